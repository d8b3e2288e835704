/**
 * The bus over NATS (issue 15) against a real nats-server with JetStream:
 * ids, send, broadcast, requests, presence, isolation and limits, with peers
 * in this process and in child processes of both runtimes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import {
  AuthError,
  connect,
  ConnectError,
  NoResponderError,
  NoSuchPeerError,
  type PeerInfo,
  PeerLeftError,
  QueueFullError,
  RemoteError,
  reply,
  TimeoutError,
  type UndeliverableDetail,
} from "../nats.ts";
import { currentRuntime, nextEvent, repoRoot, type Runtime, runtimeBin, until, within } from "./_helpers.ts";
import { NATS_TEST, NatsScenario, sees, WAIT } from "./_nats_peers.ts";

const other: Runtime = currentRuntime === "deno" ? "bun" : "deno";

test(
  "NATS peers get the lowest free ids from 1, and every peer lists the others",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const a = await s.connect({ name: "a" });
      const b = await s.child(other, { name: "b" });
      const c = await s.connect();
      assert.deepEqual([a.id, b.id, c.id], [1, 2, 3]);
      await sees(a, [1, 2, 3]);
      const peers = await a.peers();
      assert.deepEqual(peers.map((p: PeerInfo) => p.id).sort(), [1, 2, 3]);
      const pb = peers.find((p: PeerInfo) => p.id === 2)!;
      assert.equal(pb.name, "b");
      assert.equal(pb.pid, b.pid);
      assert.equal(pb.runtime, other);
      assert.deepEqual((await b.cmd("peers")).map((p: PeerInfo) => p.id).sort(), [1, 2, 3]);
    }),
);

test(
  "NATS send reaches a peer by id and by name, with sender and pid, and ctx.reply answers",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const a = await s.connect({ name: "a" });
      const b = await s.child(other, { name: "b" });
      await b.cmd("on", { name: "ping", reply: "pong" });
      const pongs: unknown[] = [];
      a.on("pong", (data) => void pongs.push(data));
      await sees(a, [b.id]);
      a.send(b.id, "ping", 1);
      a.send("b", "ping", 2);
      const first = await b.next("first ping", (e) => e.ev === "alert" && e.data === 1);
      assert.equal(first.sender, a.id);
      assert.equal(first.senderPid, process.pid);
      await b.next("second ping", (e) => e.ev === "alert" && e.data === 2);
      await until(WAIT, "two pongs", () => pongs.length === 2);
      assert.deepEqual(pongs, [{ data: 1, by: b.id }, { data: 2, by: b.id }]);
    }),
);

test("NATS broadcast reaches every peer once, the sender included", NATS_TEST, () =>
  NatsScenario.run(async (s) => {
    const a = await s.connect();
    const children = [await s.child(other), await s.child(currentRuntime)];
    for (const child of children) await child.cmd("on", { name: "hello" });
    let own = 0;
    a.on("hello", () => void own++);
    await sees(a, children.map((c) => c.id));
    await children[0].cmd("broadcast", { name: "hello", data: "x" });
    await until(WAIT, "own copy of a's broadcast", () => own === 1);
    for (const child of children) await child.next("the broadcast", (e) => e.ev === "alert" && e.name === "hello");
    a.broadcast("hello", "y");
    for (const child of children) await child.next("a's broadcast", (e) => e.ev === "alert" && e.data === "y");
    await until(WAIT, "a's own copy", () => own === 2);
    // Once each: a third alert sent after both broadcasts arrives right after them, with no duplicate in between.
    a.broadcast("hello", "z");
    for (const child of children) {
      await child.next("the last broadcast", (e) => e.ev === "alert" && e.data === "z");
      assert.deepEqual(child.events((e) => e.ev === "alert").map((e) => e.data), ["x", "y", "z"]);
    }
    await until(WAIT, "a's third copy", () => own === 3);
  }));

test(
  "NATS requests go to the responders in turn, across runtimes; RemoteError keeps the remote name and code",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const a = await s.connect();
      const b = await s.child(other);
      const c = await s.child(currentRuntime);
      await b.cmd("handle", { route: "/work/*" });
      await c.cmd("handle", { regexp: "^/work/\\d+$" });
      await c.cmd("handle", { route: "/fail", mode: "throw", message: "bad input", code: "E_BAD" });
      // Routes travel with presence: wait until a has heard of both responders' routes.
      const warm = new Set<number>();
      for (let i = 0; i < 50 && warm.size < 2; i++) {
        const answer = await a.request("/work/1", null, { timeout: 5000 }).catch(() => undefined) as { by: number };
        if (answer) warm.add(answer.by);
        else await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const by: number[] = [];
      for (let i = 0; i < 6; i++) {
        const answer = await a.request("/work/1", { i }, { timeout: 5000 }) as { by: number; data: unknown };
        assert.deepEqual(answer.data, { i });
        by.push(answer.by);
      }
      assert.deepEqual(by.sort(), [b.id, b.id, b.id, c.id, c.id, c.id].sort());
      assert.deepEqual(
        (await a.request("/work/x", 1, { to: b.id, timeout: 5000 }) as { by: number }).by,
        b.id,
      );
      const err = await a.request("/fail", null, { timeout: 5000 }).catch((e) => e);
      assert.ok(err instanceof RemoteError, String(err));
      assert.equal(err.remoteName, "RangeError");
      assert.equal(err.remoteCode, "E_BAD");
      assert.equal(err.message, "bad input");
    }),
);

test(
  "NATS request rejects with NoResponderError at once when no live peer handles the route, and TimeoutError when the handler never answers",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const a = await s.connect();
      const b = await s.connect();
      b.handle("/only", () => 1);
      b.handle("/never", () => new Promise(() => {}));
      const err = await within(
        2000,
        "NoResponderError",
        a.request("/other", null, { timeout: 30_000 }).catch((e) => e),
      );
      assert.ok(err instanceof NoResponderError, String(err));
      const late = await a.request("/never", null, { to: b.id, timeout: 200 }).catch((e) => e);
      assert.ok(late instanceof TimeoutError, String(late));
      const left = nextEvent(WAIT, a, "peerleave");
      await b.close();
      await left;
      const gone = await within(
        2000,
        "NoResponderError",
        a.request("/only", null, { timeout: 30_000 }).catch((e) => e),
      );
      assert.ok(gone instanceof NoResponderError, String(gone));
    }),
);

test("NATS send to an unknown id or name throws NoSuchPeerError", NATS_TEST, () =>
  NatsScenario.run(async (s) => {
    const a = await s.connect();
    assert.throws(() => a.send(99, "x"), NoSuchPeerError);
    assert.throws(() => a.send("nobody", "x"), NoSuchPeerError);
    assert.throws(() => a.send(0, "x"), NoSuchPeerError);
  }));

test(
  "NATS: a SIGKILLed peer leaves every view within 3 s and its pending request rejects with PeerLeftError",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const a = await s.connect();
      const b = await s.child(other, { name: "victim" });
      await b.cmd("handle", { route: "/hang", mode: "hang" });
      await sees(a, [b.id]);
      const pending = a.request("/hang", null, { to: b.id, timeout: 30_000 }).catch((e) => e);
      await b.next("the request", (e) => e.ev === "request");
      const left = nextEvent<PeerInfo>(WAIT, a, "peerleave", (p) => p.id === b.id);
      const killedAt = Date.now();
      b.signal("SIGKILL");
      const err = await pending;
      const errAfter = Date.now() - killedAt;
      await left;
      const leftAfter = Date.now() - killedAt;
      assert.ok(err instanceof PeerLeftError, String(err));
      assert.ok(errAfter < 3000, `PeerLeftError after ${errAfter} ms`);
      assert.ok(leftAfter < 3000, `peerleave after ${leftAfter} ms`);
      // The same name gets the old id back once the old one is gone.
      const again = await s.connect({ name: "victim" });
      assert.equal(again.id, b.id);
    }),
);

test(
  "NATS: what is sent to a peer the server no longer has is reported undeliverable, and a request to it fails with PeerLeftError before presence notices",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const a = await s.connect();
      const b = await s.child(other);
      await sees(a, [b.id]);
      const undeliverable: UndeliverableDetail[] = [];
      a.addEventListener(
        "undeliverable",
        (e) => void undeliverable.push((e as CustomEvent<UndeliverableDetail>).detail),
      );
      let left = false;
      a.addEventListener("peerleave", () => void (left = true));
      b.signal("SIGKILL");
      await b.child.exited;
      // The server drops b's subscriptions when its socket closes; presence notices only after 2 s of silence.
      for (let i = 0; i < 40 && undeliverable.length === 0 && !left; i++) {
        a.send(b.id, "ping", i);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.ok(!left, "undeliverable came before peerleave");
      assert.deepEqual(undeliverable[0], { to: b.id, name: "ping", reason: "peer_left" });
      const err = await a.request("/any", null, { to: b.id, timeout: 30_000 }).catch((e) => e);
      assert.ok(err instanceof PeerLeftError, String(err));
      assert.ok(!left, "PeerLeftError came before peerleave");
    }),
);

test(
  "NATS: a peer that closes leaves the others' view at once, and its name gets the same id again",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const a = await s.connect();
      const b = await s.connect({ name: "b" });
      const id = b.id;
      await sees(a, [id]);
      const left = nextEvent<PeerInfo>(1000, a, "peerleave", (p) => p.id === id);
      await b.close();
      await left;
      const c = await s.connect();
      assert.equal(c.id, id, "the lowest free id");
      await c.close();
      const b2 = await s.connect({ name: "b" });
      assert.equal(b2.id, id);
      const err = await s.connect({ name: "b", connectTimeout: 8000 }).catch((e) => e);
      assert.equal(err.code, "name_taken", String(err));
    }),
);

test(
  "NATS: a peer frozen longer than 3 s (SIGSTOP) loses its id to a new peer of its name, and is disconnected when it wakes",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const frozen = await s.child(other, { name: "w" });
      frozen.signal("SIGSTOP");
      const successor = await s.connect({ name: "w" });
      assert.equal(successor.id, frozen.id);
      frozen.signal("SIGCONT");
      const gone = await frozen.next("disconnect", (e) => e.ev === "disconnect");
      assert.match(gone.reason, /taken over/);
      const a = await s.connect();
      assert.deepEqual(
        (await a.peers()).map((p: PeerInfo) => [p.id, p.pid]).sort(),
        [[a.id, process.pid], [
          successor.id,
          process.pid,
        ]].sort(),
      );
    }),
);

test(
  "NATS buses with different names never see each other's peers or traffic",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const a = await s.connect();
      const other = await connect({ servers: s.urls, bus: `${s.bus}x` });
      try {
        assert.equal(other.id, 1);
        const seen: unknown[] = [];
        other.on("*", (data) => void seen.push(data));
        other.handle("/x", () => 1);
        a.broadcast("hello", 1);
        const err = await a.request("/x", null, { timeout: 5000 }).catch((e) => e);
        assert.ok(err instanceof NoResponderError, String(err));
        await a.flush();
        assert.deepEqual((await other.peers()).map((p: PeerInfo) => p.id), [1]);
        assert.deepEqual(seen, []);
      } finally {
        await other.close();
      }
    }),
);

test(
  "NATS: a full outgoing queue throws QueueFullError and flush() waits for room",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const a = await s.connect({ maxQueueMessages: 8 });
      let received = 0;
      a.on("tick", () => void received++);
      let refused: unknown;
      let sent = 0;
      for (let i = 0; i < 100 && refused === undefined; i++) {
        try {
          a.broadcast("tick", i);
          sent++;
        } catch (err) {
          refused = err;
        }
      }
      assert.ok(refused instanceof QueueFullError, String(refused));
      assert.ok(sent <= 8, `${sent} accepted`);
      await a.flush();
      a.broadcast("tick", "after");
      await until(WAIT, "every tick", () => received === sent + 1);
    }),
);

test("NATS close() drains: alerts sent just before it arrive", NATS_TEST, () =>
  NatsScenario.run(async (s) => {
    const b = await s.child(other);
    await b.cmd("on", { name: "last", quiet: true });
    const a = await s.connect();
    await sees(a, [b.id]);
    for (let i = 0; i < 100; i++) a.send(b.id, "last", i);
    await a.close();
    await b.next("the 100th alert", (e) => e.ev === "count" && e.n === 100);
  }));

test("NATS connect rejects with ConnectError when no server answers", NATS_TEST, async () => {
  const err = await connect({ servers: "nats://127.0.0.1:1", connectTimeout: 2000 }).catch((e) => e);
  assert.ok(err instanceof ConnectError, String(err));
});

test(
  "NATS auth is passed to the server: the right token joins, a wrong one gets AuthError",
  NATS_TEST,
  () =>
    NatsScenario.run({ config: 'authorization { token: "s3cret" }' }, async (s) => {
      const a = await s.connect({ auth: { token: "s3cret" } });
      assert.equal(a.id, 1);
      const err = await connect({ servers: s.urls, bus: s.bus, auth: { token: "wrong" }, connectTimeout: 3000 })
        .catch((e) => e);
      assert.ok(err instanceof AuthError, String(err));
    }),
);

test("mod.ts loads no NATS code: users of the Unix-socket bus never do", () => {
  const info = spawnSync(runtimeBin("deno"), ["info", "--json", "mod.ts"], { cwd: repoRoot, encoding: "utf8" });
  assert.equal(info.status, 0, info.stderr);
  const modules = (JSON.parse(info.stdout) as { modules: Array<{ specifier: string }> }).modules;
  assert.ok(modules.length > 10);
  assert.deepEqual(modules.map((m) => m.specifier).filter((s) => s.includes("nats")), []);
});

test(
  "NATS carries headers on alerts, requests and answers, and alert name patterns match as over a hub",
  NATS_TEST,
  () =>
    NatsScenario.run(async (s) => {
      const a = await s.connect();
      const b = await s.connect();
      await sees(a, [a.id, b.id]);
      const seen: Array<[string, Record<string, string>]> = [];
      b.on("jobs.*", (_data, ctx) => void seen.push([ctx.name, { ...ctx.headers }]));
      b.handle("/render", ({ data, headers }) => reply(`<p>${data}</p>`, { headers: { trace: headers.trace ?? "" } }));
      a.send(b.id, "jobs.new", 1, { headers: { trace: "7f3a" } });
      a.send(b.id, "jobs.old", 2);
      await until(WAIT, "two alerts at b", () => seen.length === 2);
      assert.deepEqual(seen, [["jobs.new", { trace: "7f3a" }], ["jobs.old", {}]]);
      const answer = await within(
        WAIT,
        "the answer",
        (async () => {
          for (let i = 0; i < 100; i++) {
            try {
              return await a.requestReply<string>("/render", "hi", { to: b.id, headers: { trace: "t1" } });
            } catch (err) {
              if (!(err instanceof NoResponderError)) throw err;
            }
          }
          throw new Error("b's route never reached a");
        })(),
      );
      assert.deepEqual(answer, { data: "<p>hi</p>", headers: { trace: "t1" } });
    }),
);
