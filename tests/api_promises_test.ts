/**
 * The README's API section, promise by promise: options and their defaults, events and their details, stats
 * fields. Each test names the promise it checks; defaults that are long times are observed without waiting
 * them out where the wire shows them (a request carries its timeout as `w`), else with one bounded wait.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import process from "node:process";
import {
  channel,
  connect,
  ConnectError,
  dial,
  FrameDecoderStream,
  FrameTooLargeError,
  Hub,
  listen,
  type Listener,
  type PeerInfo,
  QueueFullError,
  serve,
  TimeoutError,
} from "../mod.ts";
import { encodeCbor } from "../src/codec/cbor.ts";
import { frameBytes } from "../src/codec/frame_parser.ts";
import { nextEvent, tempDir, until, within } from "./_helpers.ts";

const WAIT = 10_000;

/** A hand-spoken peer: says hello, then collects every frame the hub sends. */
async function rawPeer(path: string, name: string) {
  const conn = await dial(path);
  const frames: Array<Record<string, unknown>> = [];
  let ended = false;
  const reading = (async () => {
    for await (const m of conn.readable.pipeThrough(new FrameDecoderStream())) {
      frames.push(m as Record<string, unknown>);
    }
  })().catch(() => {}).finally(() => (ended = true));
  const writer = conn.writable.getWriter();
  await writer.write(frameBytes(encodeCbor({ k: "hello", v: 1, pid: 1, runtime: "raw", name })));
  await until(WAIT, "the welcome", () => frames.some((m) => m.k === "welcome"));
  const id = frames.find((m) => m.k === "welcome")!.id as number;
  return {
    id,
    frames,
    ended: () => ended,
    async close() {
      await conn.close();
      await within(WAIT, "the raw read loop to end", reading);
    },
  };
}

/** The `w` (the requester's timeout) of the first request frame `raw` receives. */
async function requestTimeoutSeen(raw: Awaited<ReturnType<typeof rawPeer>>): Promise<unknown> {
  await until(WAIT, "a request frame", () => raw.frames.some((m) => m.k === "q"));
  return raw.frames.find((m) => m.k === "q")!.w;
}

// --- serve ---

test("serve creates the socket file with mode 0600 by default, and with the mode it is given", async () => {
  const dir = tempDir();
  try {
    const hub = await serve({ path: `${dir.path}/default.sock` });
    const shared = await serve({ path: `${dir.path}/shared.sock`, mode: 0o660 });
    assert.equal(statSync(hub.path!).mode & 0o777, 0o600);
    assert.equal(statSync(shared.path!).mode & 0o777, 0o660);
    await hub.close();
    await shared.close();
  } finally {
    dir.remove();
  }
});

test("hub.close() waits 2000 ms by default (closeTimeout) for a request in flight before closing", async () => {
  const dir = tempDir();
  const hub = await serve({ path: `${dir.path}/hub.sock` });
  try {
    const server = await connect({ path: hub.path!, name: "server" });
    server.handle("/hang", () => new Promise(() => {}));
    const client = await connect({ path: hub.path! });
    await until(WAIT, "the handler to be known", () => hub.stats().handlers > 3);
    const asked = client.request("/hang", null, { timeout: 60_000 }).catch((err) => err);
    await until(WAIT, "the request to be in flight", () => hub.stats().inFlightRequests === 1);
    const started = Date.now();
    await within(WAIT, "hub.close()", hub.close());
    const took = Date.now() - started;
    assert.ok(took >= 1950, `close() returned after ${took} ms, before its 2000 ms default`);
    assert.ok(await within(WAIT, "the request to settle", asked) instanceof Error);
  } finally {
    await hub.close();
    dir.remove();
  }
});

test("serve passes requestTimeout to hub.peer, 10000 ms by default", async () => {
  const dir = tempDir();
  try {
    const hub = await serve({ path: `${dir.path}/default.sock` });
    const raw = await rawPeer(hub.path!, "raw");
    void hub.peer.request("/x", null, { to: raw.id }).catch(() => {});
    assert.equal(await requestTimeoutSeen(raw), 10_000);
    await raw.close();
    await hub.close({ timeout: 100 });

    const quick = await serve({ path: `${dir.path}/quick.sock`, requestTimeout: 200 });
    const server = await connect({ path: quick.path!, name: "server" });
    server.handle("/hang", () => new Promise(() => {}));
    await until(WAIT, "the handler to be known", () => quick.stats().handlers > 3);
    await assert.rejects(within(WAIT, "the request to time out", quick.peer.request("/hang")), TimeoutError);
    await server.close();
    await quick.close({ timeout: 100 });
  } finally {
    dir.remove();
  }
});

test("The hub closes a connection that sends no hello after 10 s, and not before", async () => {
  const dir = tempDir();
  const hub = await serve({ path: `${dir.path}/hub.sock` });
  try {
    const conn = await dial(hub.path!);
    const started = Date.now();
    const reader = conn.readable.getReader();
    // The one long wait of this file: the hub's hello timeout is not an option.
    for (let i = 0; i < 100; i++) if ((await within(20_000, "the hub to hang up", reader.read())).done) break;
    const took = Date.now() - started;
    assert.ok(took >= 9_950, `closed after ${took} ms`);
    await conn.close();
  } finally {
    await hub.close();
    dir.remove();
  }
});

// --- connect ---

test("connect rejects with TimeoutError after its timeout when the hub accepts but never answers", async () => {
  const dir = tempDir();
  const listener: Listener = await listen(`${dir.path}/mute.sock`);
  const held: Array<{ close(): Promise<void> }> = [];
  void (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    await assert.rejects(
      within(WAIT, "connect to give up", connect({ path: listener.path, timeout: 300 })),
      TimeoutError,
    );
  } finally {
    for (const conn of held) await conn.close();
    await listener.close();
    dir.remove();
  }
});

test("connect gives requests a 10000 ms timeout by default, and the requestTimeout it is given", async () => {
  const dir = tempDir();
  const hub = await serve({ path: `${dir.path}/hub.sock` });
  try {
    const raw = await rawPeer(hub.path!, "raw");
    const plain = await connect({ path: hub.path! });
    const quick = await connect({ path: hub.path!, requestTimeout: 1234 });
    void plain.request("/x", null, { to: raw.id }).catch(() => {});
    assert.equal(await requestTimeoutSeen(raw), 10_000);
    raw.frames.length = 0;
    void quick.request("/x", null, { to: raw.id }).catch(() => {});
    assert.equal(await requestTimeoutSeen(raw), 1234);
    await plain.close();
    await quick.close();
    await raw.close();
  } finally {
    await hub.close({ timeout: 100 });
    dir.remove();
  }
});

test("connect rejects a name over 256 characters with TypeError, and takes one of 256", async () => {
  const dir = tempDir();
  const hub = await serve({ path: `${dir.path}/hub.sock` });
  try {
    await assert.rejects(connect({ path: hub.path!, name: "n".repeat(257) }), TypeError);
    const peer = await connect({ path: hub.path!, name: "n".repeat(256) });
    assert.equal(peer.name, "n".repeat(256));
    await peer.close();
  } finally {
    await hub.close();
    dir.remove();
  }
});

// --- Peer events and stats ---

test("Peers see peerleave with reason on an ordinary leave, and disconnect with reason when the hub closes", async () => {
  const dir = tempDir();
  const hub = await serve({ path: `${dir.path}/hub.sock` });
  try {
    const a = await connect({ path: hub.path!, name: "a" });
    const b = await connect({ path: hub.path!, name: "b" });
    const left = nextEvent<PeerInfo & { reason: string }>(WAIT, a, "peerleave");
    await b.close();
    const leave = await left;
    assert.deepEqual([leave.id, leave.name, leave.reason], [b.id, "b", "closed"]);
    const gone = nextEvent<{ reason: string }>(WAIT, a, "disconnect");
    await hub.close();
    // Issue 14: the reason says whether the hub closed or vanished ("connection reset: …" after a SIGKILL).
    assert.match((await gone).reason, /^hub closed/);
    assert.equal(a.connected, false);
  } finally {
    await hub.close();
    dir.remove();
  }
});

test("Peer.stats counts requestsSent, requestsServed and queuedBytes", async () => {
  const dir = tempDir();
  const hub = await serve({ path: `${dir.path}/hub.sock` });
  try {
    const a = await connect({ path: hub.path!, name: "a" });
    const b = await connect({ path: hub.path!, name: "b" });
    b.handle("/n", ({ data }) => data);
    for (let i = 0; i < 3; i++) assert.equal(await a.request("/n", i, { to: b.id }), i);
    assert.deepEqual([a.stats().requestsSent, a.stats().requestsServed], [3, 0]);
    assert.deepEqual([b.stats().requestsSent, b.stats().requestsServed], [0, 3]);
    a.send(b.id, "pad", new Uint8Array(10_000));
    assert.ok(a.stats().queuedBytes > 10_000, `queuedBytes ${a.stats().queuedBytes} right after a 10 kB send`);
    await within(WAIT, "flush", a.flush());
    assert.equal(a.stats().queuedBytes, 0);
    await a.close();
    await b.close();
  } finally {
    await hub.close();
    dir.remove();
  }
});

test("subscribe buffers 1024 alerts by default, then drops the oldest and counts them", async () => {
  const dir = tempDir();
  const hub = await serve({ path: `${dir.path}/hub.sock` });
  try {
    const a = await connect({ path: hub.path! });
    const b = await connect({ path: hub.path! });
    const reader = b.subscribe("n").getReader();
    const marked = nextEvent(WAIT, b, "marker-seen");
    b.on("marker", () => void b.dispatchEvent(new CustomEvent("marker-seen")));
    for (let i = 0; i < 1100; i++) a.send(b.id, "n", i);
    a.send(b.id, "marker");
    await marked;
    const dropped = b.stats().dropped.subscriber_overflow;
    assert.equal(dropped, 1100 - 1024);
    const first = await within(WAIT, "the oldest message kept", reader.read());
    assert.equal(first.value?.data, 1100 - 1024, "the oldest were dropped, the newest 1024 kept");
    await reader.cancel();
    await a.close();
    await b.close();
  } finally {
    await hub.close();
    dir.remove();
  }
});

test("send and broadcast throw FrameTooLargeError synchronously for a message over maxFrameBytes", async () => {
  const dir = tempDir();
  const hub = await serve({ path: `${dir.path}/hub.sock` });
  try {
    const a = await connect({ path: hub.path!, maxFrameBytes: 1000 });
    assert.throws(() => a.send(0, "big", new Uint8Array(2000)), FrameTooLargeError);
    assert.throws(() => a.broadcast("big", new Uint8Array(2000)), FrameTooLargeError);
    a.send(0, "small", new Uint8Array(100));
    await a.close();
  } finally {
    await hub.close();
    dir.remove();
  }
});

// --- channel ---

test("channel names are 1-64 of A-Z a-z 0-9 . _ -, anything else is a TypeError", () => {
  for (const bad of ["", "n".repeat(65), "a/b", "a b", "é"]) assert.throws(() => channel(bad), TypeError, bad);
});

test("channel lives in $XDG_RUNTIME_DIR/ipcbus by default, with ids.json mode 0600, and names its channel and hub", async () => {
  const dir = tempDir();
  const saved = process.env.XDG_RUNTIME_DIR;
  process.env.XDG_RUNTIME_DIR = dir.path;
  try {
    const host = channel("promises", { name: "host" });
    await within(WAIT, "the host to be ready", host.ready);
    const member = channel("promises", { role: "client" });
    await within(WAIT, "the member to be ready", member.ready);
    try {
      assert.equal(host.path, `${dir.path}/ipcbus/promises.sock`);
      assert.equal(statSync(`${dir.path}/ipcbus`).mode & 0o777, 0o700);
      assert.equal(statSync(`${dir.path}/ipcbus/promises.ids.json`).mode & 0o777, 0o600);
      assert.deepEqual([host.channel, member.channel], ["promises", "promises"]);
      assert.ok(host.hub instanceof Hub);
      assert.equal(member.hub, undefined);
    } finally {
      await member.close();
      await host.close();
    }
  } finally {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
    dir.remove();
  }
});

test("channel fires connect with its id, and ready rejects with ConnectError after connectTimeout when nobody hosts", async () => {
  const dir = tempDir();
  try {
    const host = channel("c", { dir: dir.path });
    const connected = nextEvent<{ id: number }>(WAIT, host, "connect");
    await within(WAIT, "ready", host.ready);
    assert.equal((await connected).id, host.id);
    await host.close();

    const lonely = channel("c", { dir: dir.path, role: "client", connectTimeout: 300 });
    await assert.rejects(within(WAIT, "ready to give up", lonely.ready), ConnectError);
    await lonely.close();
  } finally {
    dir.remove();
  }
});

test("channel passes queueLimit, requestTimeout and maxFrameBytes through", async () => {
  const dir = tempDir();
  try {
    const host = channel("p", { dir: dir.path, requestTimeout: 200, maxFrameBytes: 1000 });
    await within(WAIT, "ready", host.ready);
    const slow = channel("p", { dir: dir.path, role: "client", queueLimit: 4 });
    await within(WAIT, "ready", slow.ready);
    try {
      slow.handle("/hang", () => new Promise(() => {}));
      await until(WAIT, "the handler to be known", () => host.hub!.stats().handlers > 3);
      await assert.rejects(within(WAIT, "the request to time out", host.request("/hang")), TimeoutError);
      assert.throws(() => host.send(slow.id, "big", new Uint8Array(2000)), FrameTooLargeError);
      // queueLimit counts alerts sent and not yet acknowledged: four go at once, the fifth is refused.
      for (let i = 0; i < 4; i++) slow.send(host.id, "n", i);
      assert.throws(() => slow.send(host.id, "n", 4), QueueFullError);
      await within(WAIT, "the acknowledgements", slow.flush());
      slow.send(host.id, "n", 5);
    } finally {
      await slow.close();
      await host.close();
    }
  } finally {
    dir.remove();
  }
});
