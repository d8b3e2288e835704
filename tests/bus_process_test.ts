/**
 * The bus across processes: the scenarios of issue 3 (ngx.ipc, pixl-ipc,
 * luatalk, round-robin, crashes, mixed runtimes, flow control) with peers
 * and hubs in child processes run by Deno and Bun. The children are
 * tests/fixtures/bus_peer.ts and bus_hub.ts, driven by JSON lines.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import process from "node:process";
import {
  connect,
  type Hub,
  type Peer,
  type PeerInfo,
  PeerLeftError,
  QueueFullError,
  serve,
  type ServeOptions,
  type UndeliverableDetail,
} from "../mod.ts";
import { currentRuntime, nextEvent, type Runtime, tempDir, until, within } from "./_helpers.ts";
import { type ChildEvent, JsonChild } from "./_json_child.ts";

const WAIT = 15_000;
/** Above Bun's default of 5 s per test, so that the bounded waits below are what fails first. */
const PROCESS_TEST = { timeout: 60_000 };
const BUILTIN_HANDLERS = 3;

type BusEvent = ChildEvent;

/** A bus fixture in a child process (tests/fixtures/bus_peer.ts or bus_hub.ts). */
class BusProcess extends JsonChild {
  constructor(runtime: Runtime, script: string, args: string[]) {
    super(runtime, script, args, WAIT);
  }
}

/** One scenario: a temp socket path, and everything started in it, stopped in `finally`. */
class Scenario {
  readonly dir = tempDir("ipcbus-proc-");
  readonly path = `${this.dir.path}/bus.sock`;
  readonly #children: BusProcess[] = [];
  readonly #closers: Array<() => Promise<void>> = [];

  /** Starts a bus_peer.ts child and waits until it is connected. */
  async spawnPeer(runtime: Runtime = currentRuntime, options: Record<string, unknown> = {}): Promise<BusProcess> {
    const child = new BusProcess(runtime, "tests/fixtures/bus_peer.ts", [this.path, JSON.stringify(options)]);
    this.#children.push(child);
    child.ready = await child.next("ready", (e) => e.ev === "ready" || e.ev === "connect_failed");
    if (child.ready.ev !== "ready") throw new Error(`Peer child could not connect: ${JSON.stringify(child.ready)}`);
    return child;
  }

  /** Starts a bus_hub.ts child and waits until it serves. */
  async spawnHub(runtime: Runtime = currentRuntime, options: Record<string, unknown> = {}): Promise<BusProcess> {
    const child = new BusProcess(runtime, "tests/fixtures/bus_hub.ts", [this.path, JSON.stringify(options)]);
    this.#children.push(child);
    child.ready = await child.next("ready", (e) => e.ev === "ready");
    return child;
  }

  async serve(options: Partial<ServeOptions> = {}): Promise<Hub> {
    const hub = await serve({ path: this.path, ...options });
    this.#closers.push(() => hub.close({ timeout: 200 }));
    return hub;
  }

  async connect(name?: string): Promise<Peer> {
    const peer = await connect({ path: this.path, ...(name === undefined ? {} : { name }) });
    this.#closers.push(() => peer.close());
    return peer;
  }

  async cleanup(): Promise<void> {
    try {
      await Promise.all(this.#children.map((child) => child.stop()));
      for (const close of this.#closers.reverse()) await close();
    } finally {
      this.dir.remove();
    }
  }
}

async function scenario(body: (s: Scenario) => Promise<void>): Promise<void> {
  const s = new Scenario();
  try {
    await body(s);
  } finally {
    await s.cleanup();
  }
}

/** Waits until the hub has learnt `count` handlers, so requests from any peer find them. */
function handlersKnown(hub: Hub, count: number): Promise<void> {
  return until(WAIT, `${count} handlers at the hub`, () => hub.stats().handlers === count);
}

/** Repeats the async `check` (each a round trip to a child) until it is true, for at most `ms`. */
async function eventually(ms: number, what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
  }
}

const alert = (name: string, n?: number) => (e: BusEvent) =>
  e.ev === "alert" && e.name === name && (n === undefined || e.n === n);

test(
  "The ngx.ipc example: workers send hello by id, reply to the sender, and broadcast to all exactly once",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      const hub = await s.serve();
      const hubNews: number[] = [];
      let hubEnds = 0;
      hub.peer.on({ news: (_data, ctx) => void hubNews.push(ctx.sender), end: () => void hubEnds++ });
      const workers = await Promise.all([1, 2, 3].map((i) => s.spawnPeer(currentRuntime, { name: `worker-${i}` })));
      const [w1, w2] = workers;
      for (const w of workers) {
        await w.cmd("on", { name: "hello", reply: "reply" });
        await w.cmd("on", { name: "reply" });
        await w.cmd("on", { name: "news" });
        await w.cmd("on", { name: "end" });
      }
      await w1.cmd("send", { to: w2.id, name: "hello", data: { greeting: "hi" } });
      const hello = await w2.next("hello", alert("hello"));
      assert.deepEqual(
        { data: hello.data, sender: hello.sender, senderPid: hello.senderPid },
        { data: { greeting: "hi" }, sender: w1.id, senderPid: w1.pid },
      );
      const reply = await w1.next("reply", alert("reply"));
      assert.deepEqual(
        { data: reply.data, sender: reply.sender, senderPid: reply.senderPid },
        { data: { data: { greeting: "hi" }, by: w2.id }, sender: w2.id, senderPid: w2.pid },
      );

      await w1.cmd("broadcast", { name: "news", data: { n: 1 } });
      // The end marker follows the news along the same paths: once it is in, a duplicate would be too.
      await w1.cmd("broadcast", { name: "end" });
      for (const w of workers) await w.next("end", alert("end"));
      await until(WAIT, "the end marker at the hub's peer", () => hubEnds === 1);
      for (const w of workers) {
        const news = w.events(alert("news"));
        assert.equal(news.length, 1, `worker ${w.id} got the news once`);
        assert.deepEqual([news[0].data, news[0].sender, news[0].senderPid], [{ n: 1 }, w1.id, w1.pid]);
      }
      assert.deepEqual(hubNews, [w1.id]);
      assert.equal(w2.events(alert("hello")).length, 1);
      assert.equal(workers[2].events(alert("hello")).length, 0);
    });
  },
);

test(
  "The pixl-ipc scenarios: a RegExp handler on the hub, /ipcbus/echo of 1 MiB and /ipcbus/delay from another process",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      const hub = await s.serve();
      hub.peer.handle(/^\/myapi\/(\w+)$/, ({ route, data, sender, senderPid }) => ({ route, data, sender, senderPid }));
      const w = await s.spawnPeer();
      const answer = await w.cmd("request", { route: "/myapi/test", data: { q: 1 } });
      assert.deepEqual(answer.value, { route: "/myapi/test", data: { q: 1 }, sender: w.id, senderPid: w.pid });
      const miss = await w.cmd("request", { route: "/myapi/a/b" });
      assert.equal(miss.error?.name, "NoResponderError");

      const echo = await w.cmd("echo_big", { bytes: 1024 * 1024 }, 30_000);
      assert.equal(echo.equal, true, "the 1 MiB object came back unchanged");

      const delay = await w.cmd("request", { route: "/ipcbus/delay", data: { delay: 200 } });
      assert.deepEqual(delay.value, { delay: 200 });
      assert.ok(delay.ms >= 190, `answered after ${delay.ms} ms`);
      // The encoded object is about 830 KiB; it crossed the hub once each way.
      assert.ok(hub.stats().bytesIn > 768 * 1024 && hub.stats().bytesOut > 768 * 1024);
    });
  },
);

test(
  "A request from another process times out with TimeoutError and its late response is counted",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      await s.serve();
      const w = await s.spawnPeer();
      // /ipcbus/delay answers at 1000 ms; the hub forgets the request 1000 ms after its 100 ms timeout, so the
      // late answer still reaches the requester, where it is counted.
      const late = await w.cmd("request", { route: "/ipcbus/delay", data: { delay: 1000 }, timeout: 100 });
      assert.equal(late.error?.name, "TimeoutError");
      assert.equal(late.error?.code, "timeout");
      assert.ok(late.ms >= 90, `timed out after ${late.ms} ms, before its 100 ms timeout`);
      assert.equal(late.dropped.late_response, undefined, "the request failed before its answer came");
      await eventually(WAIT, "the late response to be counted", async () => {
        const stats = await w.cmd("stats");
        return stats.dropped.late_response === 1;
      });
      assert.equal((await w.cmd("stats")).pendingRequests, 0);
    });
  },
);

test(
  "A request from another process rejects with NoResponderError at once, and with RemoteError when the handler throws",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      const hub = await s.serve();
      hub.peer.handle("/fail", ({ data }) => {
        throw Object.assign(new RangeError("bad page"), data === "with code" ? { code: "E_PAGE" } : {});
      });
      const [w1, w2] = await Promise.all([s.spawnPeer(), s.spawnPeer()]);
      await w2.cmd("handle", { route: "/boom", mode: "throw", message: "boom in a worker", code: "E_BOOM" });
      await handlersKnown(hub, BUILTIN_HANDLERS + 2);

      const miss = await w1.cmd("request", { route: "/no/such/route", timeout: 10_000 });
      assert.deepEqual([miss.error?.name, miss.error?.code], ["NoResponderError", "no_handler_found"]);
      // Half the timeout: "at once" against the 10 s it would take to time out, with room for a loaded machine.
      assert.ok(miss.ms < 5_000, `rejected after ${miss.ms} ms, long before the 10 s timeout`);

      const plain = await w1.cmd("request", { route: "/fail" });
      assert.deepEqual(plain.error, {
        name: "RemoteError",
        code: "remote_error",
        message: "bad page",
        remoteName: "RangeError",
      });
      const coded = await w1.cmd("request", { route: "/fail", data: "with code" });
      assert.equal(coded.error?.remoteCode, "E_PAGE");
      const fromWorker = await w1.cmd("request", { route: "/boom" });
      assert.deepEqual(
        [fromWorker.error?.name, fromWorker.error?.remoteName, fromWorker.error?.message, fromWorker.error?.remoteCode],
        ["RemoteError", "RangeError", "boom in a worker", "E_BOOM"],
      );
    });
  },
);

test(
  "hub.stats counts peers, joins, leaves, handlers, requests, responses, alerts, frames and bytes",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      const beforeServe = Date.now();
      const hub = await s.serve();
      const afterServe = Date.now();
      const start = hub.stats();
      const { peers, handlers, peersJoined, peersLeft, alerts, requests, responses, errors, dropped } = start;
      assert.deepEqual(
        { peers, handlers, peersJoined, peersLeft, alerts, requests, responses, errors, dropped },
        {
          peers: 0,
          handlers: BUILTIN_HANDLERS,
          peersJoined: 0,
          peersLeft: 0,
          alerts: 0,
          requests: 0,
          responses: 0,
          errors: 0,
          dropped: {},
        },
      );
      for (const key of ["framesIn", "framesOut", "bytesIn", "bytesOut"] as const) {
        assert.ok(Number.isFinite(start[key]) && start[key] >= 0, `${key} is ${start[key]}`);
      }
      const [w1, w2] = await Promise.all([s.spawnPeer(), s.spawnPeer()]);
      assert.equal(hub.stats().peers, 2);
      assert.equal(hub.stats().peersJoined, 2);
      await w2.cmd("handle", { route: "/w2" });
      await w2.cmd("on", { name: "note" });
      await handlersKnown(hub, BUILTIN_HANDLERS + 1);

      for (let i = 0; i < 3; i++) assert.equal((await w1.cmd("request", { route: "/ipcbus/echo", data: i })).value, i);
      assert.equal((await w1.cmd("request", { route: "/w2" })).value.by, w2.id);
      assert.equal((await w1.cmd("request", { route: "/nobody" })).error.name, "NoResponderError");
      const remote = (await w1.cmd("request", { route: "/ipcbus/stats" })).value;
      assert.equal(remote.peers, 2);
      await w1.cmd("send", { to: w2.id, name: "note", data: 1 });
      await w1.cmd("send", { to: w2.id, name: "note", data: 2 });
      await w1.cmd("broadcast", { name: "note", data: 3 });
      await w2.next("the third note", alert("note", 3));

      const mid = hub.stats();
      assert.equal(mid.requests, 6);
      assert.equal(mid.responses, 5, "every request but the one nobody handles was answered by a peer");
      assert.equal(mid.alerts, 3);
      assert.equal(mid.inFlightRequests, 0);
      assert.equal(mid.errors, 0);
      assert.ok(mid.framesIn > start.framesIn + 10 && mid.framesOut > start.framesOut + 10);
      assert.ok(mid.bytesIn >= mid.framesIn * 5 && mid.bytesOut >= mid.framesOut * 5);
      // Counted from serve(): within the time since its call began, at least the time since it returned.
      const now = Date.now();
      assert.ok(
        mid.uptimeMs >= now - afterServe - 1 && mid.uptimeMs <= Date.now() - beforeServe,
        `uptimeMs ${mid.uptimeMs} after serve() took ${afterServe - beforeServe} ms and ${now - afterServe} ms more`,
      );
      assert.ok(mid.uptimeMs > start.uptimeMs, "uptimeMs grows");

      await w2.cmd("close");
      await until(WAIT, "the hub to see w2 leave", () => hub.stats().peers === 1);
      await w1.child.kill("SIGKILL");
      await until(WAIT, "the hub to see w1 leave", () => hub.stats().peers === 0);
      const end = hub.stats();
      assert.deepEqual([end.peersJoined, end.peersLeft, end.handlers], [2, 2, BUILTIN_HANDLERS]);
      assert.ok(end.framesOut >= mid.framesOut, "frames written to peers that left stay counted");
    });
  },
);

test(
  "The luatalk scenario: the hub sends to one client, broadcasts to all, and close() ends every client cleanly",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      const hub = await s.serve();
      const own = [] as unknown[];
      hub.peer.on("all", (data) => void own.push(data));
      hub.peer.handle("/never", () => new Promise(() => {}));
      const clients = await Promise.all([s.spawnPeer(), s.spawnPeer()]);
      const [c1, c2] = clients;
      for (const c of clients) {
        await c.cmd("on", { name: "msg" });
        await c.cmd("on", { name: "all" });
      }
      hub.peer.send(c1.id, "msg", "only for c1");
      hub.peer.broadcast("all", "for everyone");
      for (const c of clients) await c.next("the broadcast", alert("all"));
      assert.deepEqual(c1.events(alert("msg")).map((e) => [e.data, e.sender]), [["only for c1", 0]]);
      assert.equal(c2.events(alert("msg")).length, 0, "the broadcast came after msg on the same path");
      await until(WAIT, "the hub's own copy", () => own.length === 1);

      await c2.cmd("request_async", { route: "/never", tag: "pending", timeout: 30_000 });
      await until(WAIT, "the request to be in flight", () => hub.stats().inFlightRequests === 1);
      assert.ok(existsSync(s.path));
      await hub.close({ timeout: 200 });
      for (const c of clients) await c.next("disconnect", (e) => e.ev === "disconnect");
      const rejected = await c2.next("the pending request's end", (e) => e.tag === "pending");
      assert.deepEqual([rejected.ev, rejected.error?.name], ["rejected", "ClosedError"]);
      assert.ok(rejected.ms < 5_000);
      for (const c of clients) assert.equal(await within(WAIT, "the client to exit", c.child.exited), 0);
      assert.equal(existsSync(s.path), false, "the socket file is removed");
    });
  },
);

test(
  "Requests are served round-robin by two peers in other processes, and to picks one by id or by name",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      const hub = await s.serve();
      const [w1, w2] = await Promise.all([
        s.spawnPeer(currentRuntime, { name: "worker-1" }),
        s.spawnPeer(currentRuntime, { name: "worker-2" }),
      ]);
      for (const w of [w1, w2]) await w.cmd("handle", { route: "/work/*" });
      await handlersKnown(hub, BUILTIN_HANDLERS + 2);
      const client = await s.connect();
      const servedBy: number[] = [];
      for (let i = 0; i < 6; i++) {
        const answer = await client.request("/work/job", { i }) as { by: number; data: unknown; sender: number };
        assert.deepEqual([answer.data, answer.sender], [{ i }, client.id]);
        servedBy.push(answer.by);
      }
      assert.deepEqual(new Set(servedBy), new Set([w1.id, w2.id]), `served by ${servedBy}`);
      for (let i = 1; i < servedBy.length; i++) assert.notEqual(servedBy[i], servedBy[i - 1], `served by ${servedBy}`);
      const seen = [...w1.events((e) => e.ev === "request"), ...w2.events((e) => e.ev === "request")];
      assert.equal(seen.length, 6);
      for (const e of seen) assert.deepEqual([e.sender, e.senderPid], [client.id, process.pid]);

      assert.equal((await client.request("/work/x", null, { to: w2.id }) as { by: number }).by, w2.id);
      assert.equal((await client.request("/work/x", null, { to: "worker-1" }) as { by: number }).by, w1.id);
      assert.equal((await client.request("/work/x", null, { to: "worker-2" }) as { by: number }).by, w2.id);
    });
  },
);

test(
  "A peer killed with SIGKILL while serving a request makes the request reject with PeerLeftError at once",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      const hub = await s.serve();
      const worker = await s.spawnPeer();
      await worker.cmd("handle", { route: "/render", mode: "hang" });
      await handlersKnown(hub, BUILTIN_HANDLERS + 1);
      const client = await s.connect();
      const pending = client.request("/render", { page: 1 }, { timeout: 30_000 });
      pending.catch(() => {});
      await worker.next("the request", (e) => e.ev === "request");
      const killed = performance.now();
      worker.signal("SIGKILL");
      await assert.rejects(within(WAIT, "the request to fail", pending), PeerLeftError);
      const elapsed = performance.now() - killed;
      console.log(`PeerLeftError ${elapsed.toFixed(1)} ms after SIGKILL`);
      assert.ok(elapsed < 5_000, "rejected long before the 30 s timeout");
      assert.equal(client.stats().pendingRequests, 0);
    });
  },
);

test(
  "An alert to a peer killed with SIGKILL, sent before its leave arrives, is reported as undeliverable",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      const hub = await s.serve();
      const victim = await s.spawnPeer();
      const sender = await s.connect();
      const reported = nextEvent<UndeliverableDetail>(WAIT, sender, "undeliverable");
      // hub.peer hears of the leave over its in-memory link, in the same turn as the hub: the
      // sender has not read it from its socket yet, so its view still holds the victim.
      let thrown: unknown;
      const sent = nextEvent<PeerInfo>(WAIT, hub.peer, "peerleave", (info) => info.id === victim.id).then(() => {
        try {
          sender.send(victim.id, "too-late", { n: 1 });
        } catch (err) {
          thrown = err;
        }
      });
      await victim.child.kill("SIGKILL");
      await sent;
      assert.equal(thrown, undefined, "the send was accepted: the sender's view still held the victim");
      assert.deepEqual(await reported, { to: victim.id, name: "too-late", reason: "no_such_peer" });
    });
  },
);

test(
  "A stopped sender whose view is stale either gets NoSuchPeerError or an undeliverable event, never silence",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      const hub = await s.serve();
      const [sender, victim] = await Promise.all([s.spawnPeer(), s.spawnPeer()]);
      sender.signal("SIGSTOP");
      let seq: number;
      try {
        seq = sender.post("send", { to: victim.id, name: "too-late", data: 1 });
        await victim.child.kill("SIGKILL");
        await until(WAIT, "the hub to see the victim leave", () => hub.stats().peers === 1);
      } finally {
        sender.signal("SIGCONT");
      }
      const answer = await sender.answer(seq);
      if (answer.ev === "failed") assert.equal(answer.error.name, "NoSuchPeerError");
      else {
        const report = await sender.next("undeliverable", (e) => e.ev === "undeliverable");
        assert.deepEqual([report.to, report.name, report.reason], [victim.id, "too-late", "no_such_peer"]);
      }
    });
  },
);

test(
  "peers() lists a peer in another process with its pid and runtime; peerjoin and peerleave fire",
  PROCESS_TEST,
  async () => {
    const other: Runtime = currentRuntime === "deno" ? "bun" : "deno";
    await scenario(async (s) => {
      await s.serve();
      const local = await s.connect("local");
      const joined = nextEvent<PeerInfo>(WAIT, local, "peerjoin");
      const before = Date.now();
      const remote = await s.spawnPeer(other, { name: "remote" });
      const join = await joined;
      assert.deepEqual([join.id, join.name, join.pid, join.runtime], [remote.id, "remote", remote.pid, other]);
      const listed = (await local.peers()).find((p) => p.id === remote.id);
      assert.ok(listed && listed.pid === remote.pid && listed.runtime === other && listed.name === "remote");
      assert.ok(listed.since >= before - 1000 && listed.since <= Date.now(), `since ${listed.since}`);

      const theirs = await remote.cmd("peers") as PeerInfo[];
      assert.deepEqual(
        theirs.map((p) => [p.id, p.name, p.pid, p.runtime]),
        [[0, undefined, process.pid, currentRuntime], [local.id, "local", process.pid, currentRuntime], [
          remote.id,
          "remote",
          remote.pid,
          other,
        ]],
      );
      // The hub's record, the same seen from either side.
      assert.equal(theirs.find((p) => p.id === remote.id)?.since, listed.since);
      const left = nextEvent<PeerInfo>(WAIT, local, "peerleave");
      await remote.cmd("close");
      assert.equal((await left).id, remote.id);
      await remote.next("the remote's own disconnect", (e) => e.ev === "disconnect");
    });
  },
);

for (const hubRuntime of ["deno", "bun"] as const) {
  test(
    `A peer's backtracking-prone RegExp route does not stall a ${hubRuntime} hub's routing of other requests`,
    PROCESS_TEST,
    async () => {
      await scenario(async (s) => {
        const hub = await s.spawnHub(hubRuntime);
        const [greedy, worker, client] = await Promise.all(["greedy", "worker", "client"].map((n) => s.connect(n)));
        // A backtracking engine takes time exponential in the route's length to find that this does not match.
        greedy.handle(/^(.*)*x$/, () => "greedy");
        const route = `/jobs/process-image/${"1234567890".repeat(6)}`;
        worker.handle(route, () => "worker");
        await eventually(WAIT, "the handlers at the hub", async () => {
          return (await hub.cmd("hub_stats")).handlers === BUILTIN_HANDLERS + 2;
        });
        assert.equal(await client.request(route, null, { timeout: WAIT }), "worker");
        assert.equal(await client.request(`${route}/x`, null, { timeout: WAIT }), "greedy");
        assert.equal((await hub.cmd("hub_stats")).errors, 0);
      });
    },
  );
}

for (const [hubRuntime, peerRuntime] of [["deno", "bun"], ["bun", "deno"]] as const) {
  test(`A ${hubRuntime} hub with ${peerRuntime} peers exchanges alerts and requests`, PROCESS_TEST, async () => {
    await scenario(async (s) => {
      const hub = await s.spawnHub(hubRuntime);
      assert.equal(hub.ready.runtime, hubRuntime);
      const [p1, p2] = await Promise.all([
        s.spawnPeer(peerRuntime, { name: "p1" }),
        s.spawnPeer(peerRuntime, { name: "p2" }),
      ]);
      assert.deepEqual([p1.ready.runtime, p2.ready.runtime], [peerRuntime, peerRuntime]);
      await hub.cmd("handle", { regexp: "^/hub/\\w+$" });
      await hub.cmd("on", { name: "news" });
      await p1.cmd("on", { name: "hello", reply: "reply" });
      await p2.cmd("on", { name: "reply" });
      await p2.cmd("handle", { route: "/p2/work" });
      for (const p of [p1, p2]) await p.cmd("on", { name: "news" });
      await eventually(WAIT, "the handlers at the hub", async () => {
        return (await hub.cmd("hub_stats")).handlers === BUILTIN_HANDLERS + 2;
      });

      await p2.cmd("send", { to: "p1", name: "hello", data: "from p2" });
      const hello = await p1.next("hello", alert("hello"));
      assert.deepEqual([hello.data, hello.sender, hello.senderPid], ["from p2", p2.id, p2.pid]);
      const reply = await p2.next("reply", alert("reply"));
      assert.deepEqual([reply.data, reply.sender, reply.senderPid], [{ data: "from p2", by: p1.id }, p1.id, p1.pid]);

      await p1.cmd("broadcast", { name: "news", data: "all" });
      for (const p of [hub, p1, p2]) {
        const news = await p.next("news", alert("news"));
        assert.deepEqual([news.data, news.sender, news.senderPid], ["all", p1.id, p1.pid]);
      }

      const fromHub = await p1.cmd("request", { route: "/hub/x", data: [1, 2] });
      assert.deepEqual(fromHub.value, { by: 0, route: "/hub/x", data: [1, 2], sender: p1.id });
      const fromPeer = await p1.cmd("request", { route: "/p2/work", data: "job" });
      assert.deepEqual(fromPeer.value, { by: p2.id, route: "/p2/work", data: "job", sender: p1.id });
      const toPeer = await hub.cmd("request", { route: "/p2/work", data: "from the hub", to: "p2" });
      assert.deepEqual(toPeer.value, { by: p2.id, route: "/p2/work", data: "from the hub", sender: 0 });
      const echo = await p2.cmd("echo_big", { bytes: 256 * 1024 });
      assert.equal(echo.equal, true);

      const listed = await hub.cmd("hub_peers") as PeerInfo[];
      const expected = [p1, p2].sort((x, y) => x.id - y.id).map((p) => [p.id, p.pid, peerRuntime]);
      assert.deepEqual(listed.map((p) => [p.id, p.pid, p.runtime]), expected);
      const seenByPeer = await p1.cmd("peers") as PeerInfo[];
      assert.deepEqual([seenByPeer[0].id, seenByPeer[0].pid, seenByPeer[0].runtime], [0, hub.pid, hubRuntime]);
      for (const p of [hub, p1, p2]) assert.equal(p.events(alert("news")).length, 1);

      await hub.cmd("hub_close", { timeout: 500 });
      for (const p of [p1, p2]) assert.equal(await within(WAIT, "the peer to exit", p.child.exited), 0);
    });
  });
}

test(
  "A peer stopped with SIGSTOP fills its bounded queue at the hub without blocking others; what was accepted arrives after SIGCONT",
  PROCESS_TEST,
  async () => {
    await scenario(async (s) => {
      const hub = await s.serve({ maxQueueMessages: 100 });
      const slow = await s.spawnPeer();
      await slow.cmd("on", { name: "flood", quiet: true });
      await slow.cmd("on", { name: "end" });
      const [a, b, c] = [await s.connect("fast-a"), await s.connect("fast-b"), await s.connect("fast-c")];
      const refusedAtHub = { a: [] as UndeliverableDetail[], b: [] as UndeliverableDetail[] };
      a.addEventListener("undeliverable", (e) => void refusedAtHub.a.push((e as CustomEvent).detail));
      b.addEventListener("undeliverable", (e) => void refusedAtHub.b.push((e as CustomEvent).detail));
      const pings: unknown[] = [];
      c.on("ping", (data) => void pings.push(data));
      // Larger than a socket buffer's worth in one burst, so the hub's queue for slow must fill.
      const burst = 200;
      const pad = "x".repeat(16 * 1024);

      slow.signal("SIGSTOP");
      try {
        for (let i = 0; i < burst; i++) a.send(slow.id, "flood", { from: "a", i, pad });
        // The echo's answer comes after every undeliverable report for a's earlier frames.
        assert.equal(await a.request("/ipcbus/echo", "a is not blocked"), "a is not blocked");
        assert.ok(refusedAtHub.a.length > 0, "the hub refused some of the burst");
        assert.throws(() => a.send(slow.id, "flood", { from: "a", i: burst }), QueueFullError);

        // b has not been told anything yet: its alerts reach the hub, which refuses them all.
        for (let i = 0; i < 20; i++) b.send(slow.id, "flood", { from: "b", i });
        assert.equal(await b.request("/ipcbus/echo", "b is not blocked"), "b is not blocked");
        assert.equal(refusedAtHub.b.length, 20);
        assert.throws(() => b.send(slow.id, "flood", { from: "b", i: 20 }), QueueFullError);
        for (const detail of [...refusedAtHub.a, ...refusedAtHub.b]) {
          assert.deepEqual(detail, { to: slow.id, name: "flood", reason: "queue_full" });
        }
        assert.equal(hub.stats().dropped.queue_full, refusedAtHub.a.length + refusedAtHub.b.length);

        // No head-of-line blocking: alerts between fast peers flow while slow is stopped.
        a.send(c.id, "ping", "from a");
        b.send("fast-c", "ping", "from b");
        await until(WAIT, "pings between fast peers", () => pings.length === 2);
      } finally {
        slow.signal("SIGCONT");
      }

      const accepted = burst - refusedAtHub.a.length;
      await within(WAIT, "a.flush after SIGCONT", a.flush());
      await within(WAIT, "b.flush after SIGCONT", b.flush());
      await slow.next(`all ${accepted} accepted alerts`, (e) => e.ev === "count" && e.n === accepted);
      a.send(slow.id, "end", "a");
      b.send(slow.id, "end", "b");
      await until(WAIT, "both end markers", () => slow.events(alert("end")).length === 2);
      assert.equal(Math.max(...slow.events((e) => e.ev === "count").map((e) => e.n)), accepted);
    });
  },
);
