/**
 * The Peer API of issue 14 in one process, over real Unix sockets: alert
 * name patterns, headers, typed data and events, drain() and closed, errors
 * of alert handlers, a token offered to a hub without auth, and the reason
 * given when the hub goes away. Reconnecting across hub processes is in
 * reconnect_test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AuthError,
  ChannelPeer,
  ClosedError,
  connect,
  type ConnectOptions,
  DataError,
  dial,
  Hub,
  NoResponderError,
  Peer,
  type PeerInfo,
  reply,
  serve,
  type ServeOptions,
} from "../mod.ts";
import { encodeCbor } from "../src/codec/cbor.ts";
import { FrameParser } from "../src/codec/frame_parser.ts";
import { nextEvent, tempDir, until, within } from "./_helpers.ts";

const WAIT = 5_000;

/** A hub on a fresh temp path and the peers connected to it, all closed afterwards. */
async function withBus(body: (bus: Bus) => Promise<void>, options: Partial<ServeOptions> = {}): Promise<void> {
  const bus = new Bus();
  try {
    bus.hub = await serve({ path: bus.path, ...options });
    await body(bus);
  } finally {
    await bus.close();
  }
}

class Bus {
  readonly dir = tempDir("ipcbus-api-");
  readonly path = `${this.dir.path}/bus.sock`;
  hub!: Hub;
  readonly peers: Peer[] = [];

  async connect(options: Partial<ConnectOptions> = {}): Promise<Peer> {
    const peer = await connect({ path: this.path, ...options });
    this.peers.push(peer);
    return peer;
  }

  async close(): Promise<void> {
    for (const peer of this.peers) await peer.close();
    await this.hub?.close({ timeout: 200 });
    this.dir.remove();
  }
}

/** Collects `count` alerts handed to the handlers of `names` on `peer`, as "handler:name". */
function handled(peer: Peer, names: string[], count: number): Promise<string[]> {
  const seen: string[] = [];
  return within(
    WAIT,
    `${count} alerts`,
    new Promise((resolve) => {
      for (const pattern of names) {
        peer.on(pattern, (_data, ctx) => {
          seen.push(`${pattern}:${ctx.name}`);
          if (seen.length === count) resolve(seen);
        });
      }
    }),
  );
}

test("Peer.on with patterns runs the most specific handler: exact, then literal tokens, then *, then > and the catch-all", async () => {
  await withBus(async (bus) => {
    const peer = await bus.connect();
    const names = ["jobs.new", "jobs.old", "work.new", "jobs.new.urgent", "misc", "jobs.*"];
    const done = handled(peer, ["*", "jobs.>", "*.new", "jobs.*", "jobs.new"], names.length);
    for (const name of names) peer.send(peer.id, name, null);
    assert.deepEqual(await done, [
      "jobs.new:jobs.new",
      "jobs.*:jobs.old",
      "*.new:work.new",
      "jobs.>:jobs.new.urgent",
      "*:misc",
      "jobs.*:jobs.*",
    ]);
    assert.throws(() => peer.on("jobs.>.x", () => {}), TypeError);
  });
});

test("Peer.subscribe with a pattern streams every matching alert with its name, besides the handler that runs", async () => {
  await withBus(async (bus) => {
    const peer = await bus.connect();
    const handlerSaw: string[] = [];
    peer.on("jobs.new", (_data, ctx) => void handlerSaw.push(ctx.name));
    const stream = peer.subscribe<{ n: number }>("jobs.>");
    const one = peer.subscribe("jobs.*");
    for (const [i, name] of ["jobs.new", "other", "jobs.a.b", "jobs"].entries()) peer.send(peer.id, name, { n: i });
    const got: Array<[string, number]> = [];
    for await (const message of stream) {
      got.push([message.name, message.data.n]);
      if (got.length === 2) break;
    }
    assert.deepEqual(got, [["jobs.new", 0], ["jobs.a.b", 2]]);
    const reader = one.getReader();
    assert.equal((await within(WAIT, "jobs.* message", reader.read())).value?.name, "jobs.new");
    reader.releaseLock();
    await until(WAIT, "the exact handler", () => handlerSaw.length === 1);
  });
});

test("Headers travel with alerts, broadcasts, requests and answers, and an absent one is an empty object", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const alerts: Array<[string, Record<string, string>]> = [];
    b.on("job", (_data, ctx) => void alerts.push(["job", { ...ctx.headers }]));
    b.on("all", (_data, ctx) => void alerts.push(["all", { ...ctx.headers }]));
    b.handle(
      "/render",
      ({ data, headers }) =>
        reply(`<p>${data}</p>`, { headers: { "content-type": "text/html", trace: headers.trace ?? "none" } }),
    );
    await until(WAIT, "the route at the hub", () => bus.hub.stats().handlers === 4);

    a.send(b.id, "job", 1, { headers: { trace: "7f3a", "ü": "ö" } });
    a.broadcast("all", 2, { headers: { kind: "bcast" } });
    a.send(b.id, "job", 3);
    await until(WAIT, "three alerts", () => alerts.length === 3);
    assert.deepEqual(alerts, [["job", { trace: "7f3a", "ü": "ö" }], ["all", { kind: "bcast" }], ["job", {}]]);

    const full = await a.requestReply<string>("/render", "hi", { headers: { trace: "t1" } });
    assert.deepEqual(full, { data: "<p>hi</p>", headers: { "content-type": "text/html", trace: "t1" } });
    assert.equal(await a.request<string>("/render", "x"), "<p>x</p>");
    assert.deepEqual((await a.requestReply("/ipcbus/echo", 5)).headers, {});

    const streamed = a.subscribe("tagged");
    a.send(a.id, "tagged", null, { headers: { a: "1" } });
    const { value } = await within(WAIT, "a streamed alert", streamed.getReader().read());
    assert.deepEqual(value?.headers, { a: "1" });

    assert.throws(() => a.send(b.id, "job", 1, { headers: { n: 1 as unknown as string } }), TypeError);
    await assert.rejects(a.request("/render", 1, { headers: [] as unknown as Record<string, string> }), TypeError);
  });
});

test("The hub forwards an alert with headers byte for byte", async () => {
  await withBus(async (bus) => {
    const conn = await dial(bus.path);
    const writer = conn.writable.getWriter();
    const reader = conn.readable.getReader();
    const parser = new FrameParser(1 << 20);
    const bodies: Uint8Array[] = [];
    const frame = (value: unknown) => {
      const body = encodeCbor(value);
      const out = new Uint8Array(4 + body.byteLength);
      new DataView(out.buffer).setUint32(0, body.byteLength);
      out.set(body, 4);
      return out;
    };
    const nextBody = async () => {
      while (bodies.length === 0) {
        const { value, done } = await within(WAIT, "a frame", reader.read());
        if (done) throw new Error("connection ended");
        parser.push(value, (body) => bodies.push(body.slice()));
      }
      return bodies.shift()!;
    };
    try {
      await writer.write(frame({ k: "hello", v: 1, pid: 1, runtime: "raw" }));
      await nextBody(); // welcome
      const alert = encodeCbor({ k: "a", f: 1, t: 1, n: "x", d: encodeCbor(7), h: { trace: "7f3a" } });
      await writer.write(frame({ k: "a", f: 1, t: 1, n: "x", d: encodeCbor(7), h: { trace: "7f3a" } }));
      assert.deepEqual(await nextBody(), new Uint8Array(alert));
    } finally {
      await conn.close();
    }
  });
});

test("Typed handlers, requests and events check at compile time and carry the data unchanged", async () => {
  interface Job {
    n: number;
  }
  await withBus(async (bus) => {
    bus.hub.peer.handle<{ page: number }, string>("/render", ({ data }) => `<p>${data.page}</p>`);
    const peer = await bus.connect();
    const joined: number[] = [];
    peer.addEventListener("peerjoin", (e) => void joined.push(e.detail.id));
    const got = new Promise<number>((resolve) => peer.on<Job>("job", (job) => resolve(job.n + 1)));
    peer.send(peer.id, "job", { n: 41 } satisfies Job);
    assert.equal(await within(WAIT, "the job", got), 42);
    const html: string = await peer.request<string, { page: number }>("/render", { page: 3 });
    assert.equal(html, "<p>3</p>");
    const id: number = peer.id;
    assert.equal(id, 1);
    const other = await bus.connect();
    await until(WAIT, "peerjoin", () => joined.includes(other.id));
  });
});

test("Peer.drain finishes the requests it serves and awaits, refuses new ones, then closes", async () => {
  await withBus(async (bus) => {
    const worker = await bus.connect();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    worker.handle("/slow", async () => {
      await gate;
      return "done";
    });
    await until(WAIT, "the route at the hub", () => bus.hub.stats().handlers === 4);
    const served = bus.hub.peer.request("/slow", null);
    const awaited = worker.request("/ipcbus/delay", { delay: 150 });
    await until(WAIT, "both requests in flight", () => bus.hub.stats().inFlightRequests === 2);

    const closedWith = worker.closed;
    const draining = worker.drain();
    assert.throws(() => worker.send(0, "late"), ClosedError);
    await assert.rejects(worker.request("/ipcbus/echo", 1), ClosedError);
    // The hub stops routing to it; one addressed to it is refused.
    await until(WAIT, "the route withdrawn", () => bus.hub.stats().handlers === 3);
    await assert.rejects(bus.hub.peer.request("/slow", null), NoResponderError);
    await assert.rejects(bus.hub.peer.request("/slow", null, { to: worker.id }), ClosedError);

    release();
    assert.equal(await within(WAIT, "the served request", served), "done");
    assert.deepEqual(await within(WAIT, "the awaited request", awaited), { delay: 150 });
    await within(WAIT, "drain", draining);
    assert.equal(worker.connected, false);
    assert.equal(await within(WAIT, "closed", closedWith), undefined);
  });
});

test("Peer.drain gives up waiting after its timeout and settles what is left as close() does", async () => {
  await withBus(async (bus) => {
    const peer = await bus.connect();
    const pending = peer.request("/ipcbus/delay", { delay: 10_000 }, { timeout: 20_000 });
    await within(WAIT, "drain", peer.drain({ timeout: 50 }));
    await assert.rejects(pending, ClosedError);
  });
});

test("Peer.closed resolves undefined after close(), and with the error when the hub goes away", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    await a.close();
    assert.equal(await within(WAIT, "closed", a.closed), undefined);

    const b = await bus.connect();
    const disconnect = nextEvent<{ reason: string; reconnecting: boolean }>(WAIT, b, "disconnect");
    await bus.hub.close({ timeout: 100 });
    const detail = await disconnect;
    assert.match(detail.reason, /^hub closed/);
    assert.equal(detail.reconnecting, false);
    const err = await within(WAIT, "closed", b.closed);
    assert.ok(err instanceof ClosedError, String(err));
    assert.match(err.message, /hub closed/);
  });
});

test("An alert handler's error goes to the error event, with the alert named when nobody listens", async () => {
  await withBus(async (bus) => {
    const peer = await bus.connect();
    peer.on("tick", () => {
      throw new Error("tick failed");
    });
    peer.on("tock", () => Promise.reject(new Error("tock failed")));
    const printed: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void printed.push(args);
    try {
      peer.send(peer.id, "tick", null);
      peer.send(peer.id, "tock", null);
      await until(WAIT, "two reports", () => printed.length === 2);
    } finally {
      console.error = original;
    }
    assert.match(String(printed[0][0]), /alert tick/);
    assert.equal((printed[0][1] as Error).message, "tick failed");
    assert.match(String(printed[1][0]), /alert tock/);

    const event = nextEvent<Error>(WAIT, peer, "error");
    peer.send(peer.id, "tick", null);
    assert.equal((await event).message, "tick failed");
  });
});

test("A token offered to a hub without auth is refused with AuthError", async () => {
  await withBus(async (bus) => {
    await assert.rejects(
      bus.connect({ auth: { token: "secret" } }),
      (err) => err instanceof AuthError && /does not use auth tokens/.test(err.message),
    );
    assert.equal((await bus.connect()).id, 1);
  });
});

test("connect() resolves with a peer whose id is a number, and PeerInfo arrives typed", async () => {
  await withBus(async (bus) => {
    const peer = await bus.connect();
    const infos: PeerInfo[] = await peer.peers();
    assert.deepEqual(infos.map((p) => p.id), [0, peer.id]);
  });
});

test("send, broadcast and request pass the codec's DataError through, naming the path to the bad value", async () => {
  await withBus(async (bus) => {
    const peer = await bus.connect();
    const bad = { items: [1, () => {}] };
    assert.throws(() => peer.send(peer.id, "x", bad), (err) => err instanceof DataError && /items/.test(err.path));
    assert.throws(() => peer.broadcast("x", bad), DataError);
    await assert.rejects(peer.request("/ipcbus/echo", bad), DataError);
  });
});

test("Peer, Hub and ChannelPeer show no internals: their constructors throw, attach/serve/accept/start are gone", () => {
  const construct = (Class: unknown) => () => new (Class as new () => unknown)();
  assert.throws(construct(Peer), /made by connect\(\), serve\(\) and channel\(\)/);
  assert.throws(construct(Hub), /made by serve\(\) and channel\(\)/);
  assert.throws(construct(ChannelPeer), TypeError);
  for (const name of ["attach", "attachLink", "serve", "viewSnapshot", "hubHost"]) {
    assert.equal(name in Peer.prototype, false, `Peer.${name}`);
  }
  for (const name of ["accept", "start"]) assert.equal(name in Hub.prototype, false, `Hub.${name}`);
});
