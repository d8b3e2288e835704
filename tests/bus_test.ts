/**
 * The bus in one process: a hub and peers over real Unix sockets (and over
 * an in-memory pair), testing the API of issue 3 call by call.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import process from "node:process";
import {
  AuthError,
  ClosedError,
  ConnectError,
  DataError,
  dial,
  ErrorCode,
  FrameDecoderStream,
  type Hub,
  IpcError,
  memoryConnectionPair,
  NoResponderError,
  NoSuchPeerError,
  type Peer,
  type PeerInfo,
  QueueFullError,
  RemoteError,
  serve,
  type ServeOptions,
  TimeoutError,
  type UndeliverableDetail,
} from "../mod.ts";
import { channel, connect, type ConnectOptions } from "../mod.ts";
import { decodeCbor, encodeCbor } from "../src/codec/cbor.ts";
import { acceptConnection, makeHub, startHub } from "../src/bus/hub.ts";
import { makePeer, Peer as PeerClass } from "../src/bus/peer.ts";
import { attachPeer } from "../src/bus/attach_peer.ts";
import { currentRuntime, nextEvent, tempDir, until, within } from "./_helpers.ts";

const WAIT = 5_000;
/** The routes every hub serves: /ipcbus/echo, /ipcbus/delay, /ipcbus/stats. */
const BUILTIN_HANDLERS = 3;

/** A hub on a fresh temp path, with peers connected to it; everything is closed afterwards. */
class Bus {
  readonly dir = tempDir("ipcbus-bus-");
  readonly path = `${this.dir.path}/bus.sock`;
  hub!: Hub;
  readonly peers: Peer[] = [];

  async serve(options: Partial<ServeOptions> = {}): Promise<Hub> {
    this.hub = await serve({ path: this.path, ...options });
    return this.hub;
  }

  async connect(options: Partial<ConnectOptions> = {}): Promise<Peer> {
    const peer = await connect({ path: this.path, ...options });
    this.peers.push(peer);
    return peer;
  }

  /** Waits until the hub has learnt every handler, so requests from any peer find them. */
  handlersKnown(count: number): Promise<void> {
    return until(WAIT, `${count} handlers at the hub`, () => this.hub.stats().handlers === count);
  }

  async close(): Promise<void> {
    for (const peer of this.peers) await peer.close();
    await this.hub?.close({ timeout: 200 });
    this.dir.remove();
  }
}

async function withBus(body: (bus: Bus) => Promise<void>, options: Partial<ServeOptions> = {}): Promise<void> {
  const bus = new Bus();
  try {
    await bus.serve(options);
    await body(bus);
  } finally {
    await bus.close();
  }
}

/** Collects every alert `name` that `peer` receives. */
function collect(peer: Peer, name: string): Array<{ data: unknown; sender: number; senderPid: number }> {
  const got: Array<{ data: unknown; sender: number; senderPid: number }> = [];
  peer.on(name, (data, ctx) => void got.push({ data, sender: ctx.sender, senderPid: ctx.senderPid }));
  return got;
}

const isCode = (ErrorClass: new (...args: never[]) => IpcError, code: string) => (err: unknown) =>
  err instanceof ErrorClass && err.code === code;

test("connect gives peers the lowest free id, starting at 1, and hub.peer has id 0", async () => {
  await withBus(async (bus) => {
    assert.equal(bus.hub.peer.id, 0);
    assert.equal(bus.hub.path, bus.path);
    const a = await bus.connect({ name: "a" });
    const b = await bus.connect();
    const c = await bus.connect();
    assert.deepEqual([a.id, b.id, c.id], [1, 2, 3]);
    assert.equal(a.name, "a");
    assert.equal(a.connected, true);
    await b.close();
    assert.equal(b.connected, false);
    await until(WAIT, "the hub to see peer 2 leave", () => bus.hub.peers.length === 2);
    const d = await bus.connect();
    assert.equal(d.id, 2);
    assert.deepEqual(bus.hub.peers.map((p) => p.id), [1, 2, 3]);
  });
});

test("a leave frees its id for the next join, lowest first, and joins after those go on past the ids held", async () => {
  await withBus(async (bus) => {
    const first = [];
    for (let i = 0; i < 5; i++) first.push(await bus.connect());
    assert.deepEqual(first.map((p) => p.id), [1, 2, 3, 4, 5]);
    await first[3].close();
    await first[1].close();
    await until(WAIT, "the hub to see peers 4 and 2 leave", () => bus.hub.peers.length === 3);
    const next = [await bus.connect(), await bus.connect(), await bus.connect()];
    assert.deepEqual(next.map((p) => p.id), [2, 4, 6]);
    await first[0].close();
    await until(WAIT, "the hub to see peer 1 leave", () => bus.hub.peers.length === 5);
    assert.equal((await bus.connect()).id, 1);
    assert.deepEqual(bus.hub.peers.map((p) => p.id), [1, 2, 3, 4, 5, 6]);
  });
});

test("connect is refused when the name is taken by a live peer", async () => {
  await withBus(async (bus) => {
    await bus.connect({ name: "unique" });
    await assert.rejects(
      bus.connect({ name: "unique" }),
      (err) => err instanceof IpcError && /unique/.test(err.message),
    );
  });
});

test("Peer.send delivers to a peer by id or by name, and ctx.reply answers the sender", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect({ name: "worker-a" });
    const b = await bus.connect({ name: "worker-b" });
    b.on("hello", (data, ctx) => {
      assert.equal(ctx.name, "hello");
      ctx.reply("reply", { got: data, sender: ctx.sender, senderPid: ctx.senderPid });
    });
    const replies = collect(a, "reply");
    a.send(b.id, "hello", { n: 1 });
    a.send("worker-b", "hello", { n: 2 });
    await until(WAIT, "two replies", () => replies.length === 2);
    assert.deepEqual(replies, [
      { data: { got: { n: 1 }, sender: a.id, senderPid: process.pid }, sender: b.id, senderPid: process.pid },
      { data: { got: { n: 2 }, sender: a.id, senderPid: process.pid }, sender: b.id, senderPid: process.pid },
    ]);
  });
});

test("A Uint8Array given to send, broadcast or request is taken as it was at the call: changing it afterwards changes nothing that arrives", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const got = collect(b, "bytes");
    const sizes = [0, 5, 1024, 100_000, 1024 * 1024];
    const expected: Uint8Array[] = [];
    const answers: Array<Promise<unknown>> = [];
    for (const [i, size] of sizes.entries()) {
      const bytes = new Uint8Array(size).fill(i + 1);
      expected.push(bytes.slice());
      a.send(b.id, "bytes", bytes);
      bytes.fill(0xee);
      a.broadcast("bytes", bytes.fill(i + 1));
      bytes.fill(0xee);
      answers.push(a.request("/ipcbus/echo", bytes.fill(i + 1)));
      bytes.fill(0xee);
    }
    assert.deepEqual(await within(WAIT, "the echoes", Promise.all(answers)), expected);
    await until(WAIT, "every alert", () => got.length === 2 * sizes.length);
    assert.deepEqual(got.map((g) => g.data), expected.flatMap((bytes) => [bytes, bytes]));
  });
});

test("A hub's own handler may keep the data and payload of a request: the requests and echoes read after it change nothing it kept", async () => {
  await withBus(async (bus) => {
    const kept: Array<{ data: unknown; payload: Uint8Array }> = [];
    bus.hub.peer.handle("/keep", ({ data, payload }) => {
      kept.push({ data, payload });
      return kept.length;
    });
    const a = await bus.connect();
    // Small requests share a read buffer; large ones are assembled in the hub's pooled buffers.
    const sizes = [5, 1024, 100_000, 1024 * 1024, 3, 200_000];
    const sent = sizes.map((size, i) => new Uint8Array(size).fill(i + 1));
    const answers: Array<Promise<unknown>> = [];
    for (const [i, bytes] of sent.entries()) {
      answers.push(a.request("/keep", bytes));
      answers.push(a.request("/ipcbus/echo", new Uint8Array(sizes[i]).fill(0xee)));
    }
    await within(WAIT, "every answer", Promise.all(answers));
    assert.equal(kept.length, sizes.length);
    assert.deepEqual(kept.map((k) => k.data), sent);
    assert.deepEqual(kept.map((k) => decodeCbor(k.payload)), sent);
  });
});

test("Peer.send throws NoSuchPeerError synchronously for an unknown id or name", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    assert.throws(() => a.send(42, "hello"), isCode(NoSuchPeerError, ErrorCode.NoSuchPeer));
    assert.throws(() => a.send("nobody", "hello"), NoSuchPeerError);
    await assert.rejects(a.request("/ipcbus/echo", 1, { to: 42 }), NoSuchPeerError);
  });
});

test("Peer.send, Peer.broadcast and Peer.request fail with ClosedError after close()", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    await a.close();
    assert.throws(() => a.send(b.id, "hello"), isCode(ClosedError, ErrorCode.Closed));
    assert.throws(() => a.broadcast("hello"), ClosedError);
    await assert.rejects(a.request("/ipcbus/echo"), ClosedError);
    await a.close();
  });
});

test("Peer methods throw TypeError or RangeError for bad arguments", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const bad = a as unknown as Record<string, (...args: unknown[]) => unknown>;
    assert.throws(() => a.send(0, ""), TypeError);
    assert.throws(() => bad.send(0, 42), TypeError);
    assert.throws(() => bad.send({}, "hello"), TypeError);
    assert.throws(() => a.broadcast(""), TypeError);
    assert.throws(() => bad.on("hello", 42), TypeError);
    assert.throws(() => bad.on("", () => {}), TypeError);
    assert.throws(() => bad.handle(42, () => {}), TypeError);
    assert.throws(() => bad.handle("", () => {}), TypeError);
    assert.throws(() => bad.handle("/x", "not a function"), TypeError);
    // The codec's typed error passes through as it is (issue 14): DataError names the path to the bad value.
    assert.throws(() => a.send(0, "hello", () => {}), DataError);
    await assert.rejects(a.request(""), TypeError);
    await assert.rejects(a.request("/ipcbus/echo", 1, { timeout: -1 }), RangeError);
    assert.throws(() => a.subscribe("x", { bufferSize: 0 }), RangeError);
    await assert.rejects(bad.request("/ipcbus/echo", 1, { to: {} }) as Promise<unknown>, TypeError);
    await assert.rejects(serve({} as ServeOptions), TypeError);
    await assert.rejects(connect({ path: bus.path, name: "" }), TypeError);
    // The peer is still usable after all that.
    assert.equal(await a.request("/ipcbus/echo", "still here"), "still here");
  });
});

test("Peer.on accepts a map of handlers; off() and on(name, null) remove one; unhandled alerts are counted", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const got: string[] = [];
    b.on({ one: () => void got.push("one"), two: () => void got.push("two"), three: () => void got.push("three") });
    b.off("two");
    b.on("three", null);
    for (const name of ["one", "two", "three", "one"]) a.send(b.id, name);
    await until(WAIT, "four alerts at b", () => b.stats().alertsReceived === 4);
    assert.deepEqual(got, ["one", "one"]);
    assert.equal(b.stats().dropped.no_handler, 2);
    assert.equal(a.stats().alertsSent, 4);
  });
});

test("Peer.broadcast reaches every peer, the sender and hub.peer exactly once each", async () => {
  await withBus(async (bus) => {
    const peers = [bus.hub.peer, await bus.connect(), await bus.connect(), await bus.connect()];
    const news = peers.map((p) => collect(p, "news"));
    const ends = peers.map((p) => collect(p, "end"));
    peers[1].broadcast("news", { n: 1 });
    // The end marker follows the same path: once it is in, any duplicate would be too.
    peers[1].broadcast("end");
    await until(WAIT, "the end marker everywhere", () => ends.every((e) => e.length === 1));
    for (const got of news) assert.deepEqual(got, [{ data: { n: 1 }, sender: peers[1].id, senderPid: process.pid }]);
    bus.hub.peer.broadcast("end");
    await until(WAIT, "the hub's end marker everywhere", () => ends.every((e) => e.length === 2));
    assert.ok(ends.every((e) => e[1].sender === 0));
  });
});

test("A burst of broadcasts larger than a write reaches every peer whole and in order, between alerts to one peer", async () => {
  await withBus(async (bus) => {
    const sender = await bus.connect();
    const b = await bus.connect();
    // One that drops its oldest broadcasts when full has them copied (droppable) rather than shared; it keeps up here.
    const receivers = [bus.hub.peer, b, await bus.connect(), await bus.connect({ dropOldestBroadcasts: true })];
    const heard = receivers.map((peer) => {
      const got: string[] = [];
      peer.on("all", (data) => void got.push(`all ${(data as { i: number }).i}`));
      peer.on("one", (data) => void got.push(`one ${data as number}`));
      return got;
    });
    // 3 000 broadcasts of over 100 B: several of the hub's 64 KiB broadcast buffers, and several writes per peer.
    const COUNT = 3_000;
    const pad = new Uint8Array(100).fill(1);
    const expectedB: string[] = [];
    for (let i = 0; i < COUNT;) {
      try {
        sender.broadcast("all", { i, pad });
      } catch (err) {
        if (!(err instanceof QueueFullError)) throw err;
        await sender.flush();
        continue;
      }
      expectedB.push(`all ${i}`);
      if (i % 97 === 0) {
        sender.send(b.id, "one", i);
        expectedB.push(`one ${i}`);
      }
      i++;
    }
    await sender.flush();
    await until(WAIT, "every broadcast everywhere", () => heard.every((got) => got.length >= COUNT));
    const all = Array.from({ length: COUNT }, (_, i) => `all ${i}`);
    assert.deepEqual(heard[1], expectedB, "b: the broadcasts and the alerts to b, in the order sent");
    for (const got of [heard[0], heard[2], heard[3]]) assert.deepEqual(got, all);
  });
});

test("Peer.request serves the hub's own handlers first, then other peers round-robin", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const c = await bus.connect();
    a.handle("/work", () => a.id);
    b.handle("/work/*", () => b.id);
    await bus.handlersKnown(BUILTIN_HANDLERS + 2);
    const served = [];
    for (let i = 0; i < 4; i++) served.push(await c.request("/work" + (i % 2 ? "" : "/x"), null));
    // "/work/x" matches only b's prefix; "/work" only a's exact pattern.
    assert.deepEqual(served, [b.id, a.id, b.id, a.id]);
    b.handle(/^\/work$/, () => b.id);
    await bus.handlersKnown(BUILTIN_HANDLERS + 3);
    const alternating = [];
    for (let i = 0; i < 4; i++) alternating.push(await c.request("/work"));
    assert.deepEqual(new Set(alternating), new Set([a.id, b.id]));
    for (let i = 1; i < alternating.length; i++) assert.notEqual(alternating[i], alternating[i - 1]);
    bus.hub.peer.handle("/work", () => 0);
    await bus.handlersKnown(BUILTIN_HANDLERS + 4);
    assert.deepEqual([await c.request("/work"), await c.request("/work")], [0, 0]);
  });
});

test("Peer.handle refuses a RegExp the hub cannot run in linear time, and keeps the routes it had", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const c = await bus.connect();
    a.handle(/^\/work\/(\d+)$/, ({ route }) => route);
    for (const [pattern, why] of [[/^\/a(?=\/b)/, /lookahead/], [/^\/(a)\/\1$/, /backreferences/]] as const) {
      assert.throws(() => a.handle(pattern, () => 0), (err) => err instanceof TypeError && why.test(err.message));
    }
    for (let i = 0; i < 10; i++) a.handle(new RegExp(`^/big/${i}/a{1900}$`), () => i);
    assert.throws(
      () => a.handle(/^\/big\/10\/a{1900}$/, () => 10),
      (err) => err instanceof RangeError && /over 20000 per peer/.test(err.message),
    );
    // Replacing a pattern's handler does not count the pattern twice; removing one makes room.
    a.handle(/^\/big\/9\/a{1900}$/, () => "nine");
    a.handle(/^\/big\/0\/a{1900}$/, null);
    a.handle(/^\/big\/10\/a{1900}$/, () => 10);
    await bus.handlersKnown(BUILTIN_HANDLERS + 11);
    assert.equal(await c.request("/work/12"), "/work/12");
    assert.equal(await c.request(`/big/9/${"a".repeat(1900)}`), "nine");
    assert.equal(await c.request(`/big/10/${"a".repeat(1900)}`), 10);
    await assert.rejects(c.request(`/big/0/${"a".repeat(1900)}`), NoResponderError);
    assert.equal(a.connected, true);
  });
});

test("Peer.request with to asks that peer, by id or by name", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect({ name: "a" });
    const b = await bus.connect({ name: "b" });
    const c = await bus.connect();
    a.handle("/who", ({ sender, senderPid }) => ({ by: "a", sender, senderPid }));
    b.handle("/who", ({ sender, senderPid }) => ({ by: "b", sender, senderPid }));
    await bus.handlersKnown(BUILTIN_HANDLERS + 2);
    assert.deepEqual(await c.request("/who", null, { to: b.id }), { by: "b", sender: c.id, senderPid: process.pid });
    assert.deepEqual(await c.request("/who", null, { to: "a" }), { by: "a", sender: c.id, senderPid: process.pid });
    assert.deepEqual(await c.request("/who", null, { to: "b" }), { by: "b", sender: c.id, senderPid: process.pid });
    // A peer asked directly for a route it does not serve answers NoResponderError.
    await assert.rejects(c.request("/nope", null, { to: "a" }), NoResponderError);
  });
});

test("Peer.request rejects with NoResponderError when no handler matches, at once", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const start = performance.now();
    await assert.rejects(a.request("/nobody/home", null, { timeout: 10_000 }), (err) => {
      assert.ok(err instanceof NoResponderError);
      assert.equal(err.code, "no_handler_found");
      return true;
    });
    assert.ok(performance.now() - start < 2_000, "rejected long before the timeout");
  });
});

test("Peer.request rejects with TimeoutError and counts the late response as dropped", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    bus.hub.peer.handle("/slow", async () => {
      await released;
      return "late";
    });
    const start = performance.now();
    await assert.rejects(a.request("/slow", null, { timeout: 100 }), isCode(TimeoutError, ErrorCode.Timeout));
    assert.ok(performance.now() - start >= 90);
    assert.equal(a.stats().pendingRequests, 0);
    release();
    await until(WAIT, "the late response to be counted", () => a.stats().dropped.late_response === 1);
  });
});

test("Peer.request rejects with the reason of an aborted signal", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const controller = new AbortController();
    const pending = a.request("/ipcbus/delay", { delay: 5_000 }, { signal: controller.signal });
    const reason = new Error("not needed any more");
    controller.abort(reason);
    await assert.rejects(pending, (err) => err === reason);
    const aborted = AbortSignal.abort(new RangeError("aborted before"));
    await assert.rejects(a.request("/ipcbus/echo", 1, { signal: aborted }), RangeError);
    assert.equal(a.stats().pendingRequests, 0);
  });
});

test("Many requests outstanding at once are matched by id whatever the order of the answers", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const waiting = new Map<number, (value: number) => void>();
    b.handle("/square", ({ data }) => new Promise((resolve) => waiting.set(data as number, resolve)));
    await bus.handlersKnown(BUILTIN_HANDLERS + 1);
    const count = 50;
    const answers = Array.from({ length: count }, (_, i) => a.request("/square", i));
    await until(WAIT, "all requests at b", () => waiting.size === count);
    assert.equal(a.stats().pendingRequests, count);
    for (let i = count - 1; i >= 0; i--) waiting.get(i)!(i * i);
    assert.deepEqual(await Promise.all(answers), Array.from({ length: count }, (_, i) => i * i));
  });
});

test("A handler that throws reaches the caller as RemoteError with its name, message and code", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    b.handle("/fail", ({ data }) => {
      const err = new RangeError(`bad page ${data}`);
      if (data === 2) Object.assign(err, { code: "E_PAGE" });
      throw err;
    });
    b.handle("/reject", () => Promise.reject(new Error("async failure")));
    await bus.handlersKnown(BUILTIN_HANDLERS + 2);
    await assert.rejects(a.request("/fail", 1), (err) => {
      assert.ok(err instanceof RemoteError);
      assert.equal(err.code, ErrorCode.Remote);
      assert.equal(err.remoteName, "RangeError");
      assert.equal(err.message, "bad page 1");
      assert.equal(err.remoteCode, undefined);
      return true;
    });
    await assert.rejects(a.request("/fail", 2), (err) => err instanceof RemoteError && err.remoteCode === "E_PAGE");
    await assert.rejects(a.request("/reject"), (err) => err instanceof RemoteError && err.message === "async failure");
    await assert.rejects(
      a.request("/ipcbus/delay", { delay: "soon" }),
      (err) => err instanceof RemoteError && err.remoteName === "RangeError",
    );
  });
});

test("/ipcbus/echo, /ipcbus/delay and /ipcbus/stats are served by every hub", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const data = { nested: [1, "two", { three: new Uint8Array([3]) }], nil: null, yes: true };
    assert.deepEqual(await a.request("/ipcbus/echo", data), data);
    const start = performance.now();
    assert.deepEqual(await a.request("/ipcbus/delay", { delay: 100 }), { delay: 100 });
    assert.ok(performance.now() - start >= 90);
    const stats = await a.request("/ipcbus/stats") as { peers: number; requests: number };
    assert.equal(stats.peers, 1);
    assert.equal(stats.requests, 3);
  });
});

test("Peer.subscribe yields data and sender in order, and cancelling the stream unsubscribes", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const stream = a.subscribe("tick");
    for (let i = 0; i < 5; i++) b.send(a.id, "tick", i);
    const got = [];
    for await (const message of stream) {
      got.push(message);
      if (got.length === 5) break; // break cancels the stream
    }
    assert.deepEqual(got, [0, 1, 2, 3, 4].map((data) => ({ data, sender: b.id, name: "tick", headers: {} })));
    b.send(a.id, "tick", 5);
    await until(WAIT, "the sixth tick at a", () => a.stats().alertsReceived === 6);
    assert.equal(a.stats().dropped.no_handler, 1, "no subscriber is left for tick");
  });
});

test('Peer.on("*") catches alerts without a handler of their own, and subscribe("*") sees every alert', async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const caught: string[] = [];
    const named: string[] = [];
    a.on("*", (_data, ctx) => void caught.push(ctx.name));
    a.on("known", (_data, ctx) => void named.push(ctx.name));
    const all = a.subscribe("*").getReader();
    for (const name of ["known", "other", "third"]) b.send(a.id, name, name);
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push((await all.read()).value);
    assert.deepEqual(seen.map((m) => [m?.name, m?.data, m?.sender]), [
      ["known", "known", b.id],
      ["other", "other", b.id],
      ["third", "third", b.id],
    ]);
    assert.deepEqual(named, ["known"]);
    assert.deepEqual(caught, ["other", "third"]);
    await all.cancel();
  });
});

test("Peer.subscribe drops the oldest message when its buffer is full and counts subscriber_overflow", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const stream = a.subscribe("burst", { bufferSize: 3 });
    for (let i = 0; i < 10; i++) b.send(a.id, "burst", i);
    await until(WAIT, "ten bursts at a", () => a.stats().alertsReceived === 10);
    assert.equal(a.stats().dropped.subscriber_overflow, 7);
    const reader = stream.getReader();
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await reader.read()).value?.data);
    assert.deepEqual(got, [7, 8, 9]);
    await reader.cancel();
  });
});

test("Peer.subscribe streams end when the peer closes", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const stream = a.subscribe("tick");
    await a.close();
    assert.deepEqual(await within(WAIT, "the stream to end", Array.fromAsync(stream)), []);
  });
});

test("Peer.peers lists id, name, pid, runtime and since; peerjoin and peerleave fire", async () => {
  await withBus(async (bus) => {
    const before = Date.now();
    const a = await bus.connect({ name: "a" });
    const joined = nextEvent<PeerInfo>(WAIT, a, "peerjoin");
    const b = await bus.connect({ name: "b" });
    const { id, name, pid, runtime } = await joined;
    assert.deepEqual({ id, name, pid, runtime }, { id: b.id, name: "b", pid: process.pid, runtime: currentRuntime });
    const list = await a.peers();
    assert.deepEqual(list.map((p) => [p.id, p.name]), [[0, undefined], [a.id, "a"], [b.id, "b"]]);
    for (const p of list) {
      assert.equal(p.pid, process.pid);
      assert.equal(p.runtime, currentRuntime);
      assert.ok(p.since >= before - 1000 && p.since <= Date.now(), `since ${p.since}`);
    }
    const left = nextEvent<PeerInfo>(WAIT, a, "peerleave");
    await b.close();
    assert.equal((await left).id, b.id);
    assert.deepEqual((await a.peers()).map((p) => p.id), [0, a.id]);
    assert.throws(() => a.send("b", "hello"), NoSuchPeerError);
  });
});

test("On a bus of 64 peers and more joins and leaves are announced in batches, each once and in order, and every view stays exact", async () => {
  await withBus(async (bus) => {
    const first = await bus.connect({ name: "first" });
    const joins: number[] = [];
    const leaves: number[] = [];
    first.addEventListener("peerjoin", (e) => void joins.push((e as CustomEvent<PeerInfo>).detail.id));
    first.addEventListener("peerleave", (e) => void leaves.push((e as CustomEvent<PeerInfo>).detail.id));
    const others: Peer[] = [];
    for (let i = 0; i < 70; i++) others.push(await bus.connect());
    const ids = (peers: PeerInfo[]) => peers.map((p) => p.id);
    const all = [0, first.id, ...others.map((p) => p.id)];
    await until(WAIT, "the first peer to see the 70 joins", () => joins.length === 70);
    assert.deepEqual(joins, others.map((p) => p.id), "each join once, in order");
    assert.deepEqual(ids(await first.peers()), all);
    assert.deepEqual(ids(await others[0].peers()), all, "a peer that joined early learnt of those after it");
    // A newcomer's first frame goes out only after its join: the receiver knows its sender.
    const late = await bus.connect({ name: "late" });
    const got = nextEvent<{ pid: number }>(WAIT, first, "got");
    first.on(
      "hi",
      (_data, ctx) => void first.dispatchEvent(new CustomEvent("got", { detail: { pid: ctx.senderPid } })),
    );
    late.send("first", "hi");
    assert.equal((await got).pid, process.pid);
    for (const peer of others.slice(0, 10)) await peer.close();
    await until(WAIT, "10 leaves", () => leaves.length === 10);
    assert.deepEqual(leaves, others.slice(0, 10).map((p) => p.id));
    assert.deepEqual(ids(await others[20].peers()), [0, first.id, ...others.slice(10).map((p) => p.id), late.id]);
  });
});

test("serve() and channel options check slowConsumer: an object with an integer timeout in ms", async () => {
  const dir = tempDir("ipcbus-slow-option-");
  try {
    const path = `${dir.path}/bus.sock`;
    await assert.rejects(serve({ path, slowConsumer: { timeout: 0 } }), RangeError);
    await assert.rejects(serve({ path, slowConsumer: { timeout: 1.5 } }), RangeError);
    await assert.rejects(serve({ path, slowConsumer: 5 as never }), TypeError);
    assert.throws(() => channel("slow-option", { dir: dir.path, slowConsumer: { timeout: -1 } }), RangeError);
    const hub = await serve({ path, slowConsumer: { timeout: 500 } });
    assert.equal(hub.stats().slowConsumers, 0);
    await hub.close({ timeout: 100 });
  } finally {
    dir.remove();
  }
});

test("serve with auth refuses a missing or wrong token with AuthError and accepts the right one", async () => {
  await withBus(async (bus) => {
    await assert.rejects(bus.connect(), isCode(AuthError, ErrorCode.Auth));
    await assert.rejects(bus.connect({ auth: { token: "wrong" } }), AuthError);
    await assert.rejects(bus.connect({ auth: { token: "s3cret!" } }), AuthError);
    const a = await bus.connect({ auth: { token: "s3cret" } });
    assert.equal(a.id, 1);
    assert.equal(await a.request("/ipcbus/echo", "in"), "in");
    assert.equal(bus.hub.stats().peers, 1);
  }, { auth: { token: "s3cret" } });
});

/** Writes `bytes` on a raw connection and resolves once the hub has hung up. */
async function misbehave(path: string, bytes: Uint8Array): Promise<void> {
  const conn = await dial(path);
  try {
    const writer = conn.writable.getWriter();
    await writer.write(bytes);
    const reader = conn.readable.getReader();
    await within(
      WAIT,
      "the hub to drop the connection",
      (async () => {
        try {
          while (!(await reader.read()).done);
        } catch {
          // A reset counts as dropped too.
        }
      })(),
    );
  } finally {
    await conn.close();
  }
}

function frame(body: Uint8Array | number[]): Uint8Array {
  const bytes = new Uint8Array(4 + body.length);
  new DataView(bytes.buffer).setUint32(0, body.length);
  bytes.set(body, 4);
  return bytes;
}

test("The hub drops a raw connection sending garbage, an oversized frame or frames before the handshake", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const got = collect(b, "still");
    const cases: Array<[string, Uint8Array]> = [
      ["text", new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
      ["invalid CBOR", frame([0xff, 0xff, 0xff, 0xff])],
      ["not a map", frame([0x83, 0x01, 0x02, 0x03])],
      ["oversized frame", new Uint8Array([0x00, 0x01, 0x00, 0x01, 0xa0])],
      // {"k": "a", "f": 1, "n": "x", "d": h''} — a valid alert, but no hello came first.
      [
        "frame before hello",
        frame([0xa4, 0x61, 0x6b, 0x61, 0x61, 0x61, 0x66, 0x01, 0x61, 0x6e, 0x61, 0x78, 0x61, 0x64, 0x40]),
      ],
    ];
    for (const [i, [what, bytes]] of cases.entries()) {
      await within(WAIT, what, misbehave(bus.path, bytes));
      a.send(b.id, "still", i);
      await until(WAIT, `an alert between good peers after ${what}`, () => got.length === i + 1);
      await until(WAIT, `the error count after ${what}`, () => bus.hub.stats().errors === i + 1);
    }
    assert.equal(bus.hub.stats().peers, 2);
    assert.equal(bus.hub.stats().peersJoined, 2);
    assert.equal(await a.request("/ipcbus/echo", "ok"), "ok");
  }, { maxFrameBytes: 65536 });
});

/** A client that speaks the protocol by hand, frame by frame, as a foreign implementation would. */
class RawClient {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<unknown>;
  readonly conn: Awaited<ReturnType<typeof dial>>;

  private constructor(conn: Awaited<ReturnType<typeof dial>>) {
    this.conn = conn;
    this.#writer = conn.writable.getWriter();
    this.#reader = conn.readable.pipeThrough(new FrameDecoderStream()).getReader();
  }

  static async dial(path: string): Promise<RawClient> {
    return new RawClient(await dial(path));
  }

  write(message: Record<string, unknown>): Promise<void> {
    return this.#writer.write(frame(encodeCbor(message)));
  }

  /** The next message, or null when the hub has closed the connection. */
  async read(): Promise<Record<string, unknown> | null> {
    const { value, done } = await within(WAIT, "a frame from the hub", this.#reader.read());
    return done ? null : value as Record<string, unknown>;
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}

test("A client speaking the protocol by hand is welcomed, served, and told about an unknown kind without being dropped", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect({ name: "a" });
    const raw = await RawClient.dial(bus.path);
    try {
      const joined = nextEvent<PeerInfo>(WAIT, a, "peerjoin");
      await raw.write({ k: "hello", v: 1, pid: 4242, runtime: "python", name: "foreign" });
      const welcome = await raw.read();
      assert.equal(welcome?.k, "welcome");
      assert.equal(welcome?.id, 2);
      assert.deepEqual((welcome?.peers as PeerInfo[]).map((p) => p.id), [0, 1, 2]);
      const foreign = await joined;
      assert.deepEqual([foreign.id, foreign.name, foreign.pid, foreign.runtime], [2, "foreign", 4242, "python"]);
      const listed = (await a.peers()).find((p) => p.id === 2);
      assert.deepEqual([listed?.name, listed?.pid, listed?.runtime], ["foreign", 4242, "python"]);

      await raw.write({ k: "q", f: 2, r: 7, u: "/ipcbus/echo", d: encodeCbor({ hi: [1, 2] }) });
      const response = await raw.read();
      assert.deepEqual([response?.k, response?.t, response?.r], ["p", 2, 7]);
      assert.deepEqual(decodeCbor(response?.d as Uint8Array), { hi: [1, 2] });

      await raw.write({ k: "from-the-future", f: 2 });
      const error = await raw.read();
      assert.equal(error?.k, "error");
      assert.equal((error?.e as { code?: string }).code, "protocol_error");
      assert.equal(bus.hub.stats().errors, 1);

      // Still connected: an alert from a peer reaches it, with the payload as an embedded CBOR byte string.
      a.send("foreign", "note", { n: 1 });
      const note = await raw.read();
      assert.deepEqual([note?.k, note?.f, note?.t, note?.n], ["a", a.id, 2, "note"]);
      assert.deepEqual(decodeCbor(note?.d as Uint8Array), { n: 1 });
    } finally {
      await raw.close();
    }
  });
});

test("The hub refuses a hello with a newer protocol version and closes the connection", async () => {
  await withBus(async (bus) => {
    const raw = await RawClient.dial(bus.path);
    try {
      await raw.write({ k: "hello", v: 99, pid: 4242, runtime: "future" });
      const refusal = await raw.read();
      assert.equal(refusal?.k, "refuse");
      assert.equal((refusal?.e as { code?: string }).code, "protocol_error");
      assert.match((refusal?.e as { message: string }).message, /99/);
      assert.equal(await raw.read(), null);
      assert.equal(bus.hub.stats().peers, 0);
    } finally {
      await raw.close();
    }
  });
});

test("Hub.close also closes a connection that has not finished its handshake", async () => {
  const bus = new Bus();
  try {
    const hub = await bus.serve();
    const raw = await RawClient.dial(bus.path);
    try {
      await hub.close({ timeout: 100 });
      assert.equal(await raw.read(), null);
    } finally {
      await raw.close();
    }
  } finally {
    await bus.close();
  }
});

test("Hub.close lets a request in flight finish within its timeout", async () => {
  const bus = new Bus();
  try {
    const hub = await bus.serve();
    const a = await bus.connect();
    const pending = a.request("/ipcbus/delay", { delay: 150 });
    await until(WAIT, "the request to be in flight", () => hub.stats().inFlightRequests === 1);
    await hub.close({ timeout: 3_000 });
    assert.deepEqual(await pending, { delay: 150 });
  } finally {
    await bus.close();
  }
});

test("Hub.close ends every peer: disconnect fires, pending requests reject with ClosedError, the socket file goes", async () => {
  const bus = new Bus();
  try {
    const hub = await bus.serve();
    const a = await bus.connect();
    const b = await bus.connect();
    hub.peer.handle("/never", () => new Promise(() => {}));
    const pending = a.request("/never", null, { timeout: 30_000 });
    const disconnects = [nextEvent(WAIT, a, "disconnect"), nextEvent(WAIT, b, "disconnect")];
    await until(WAIT, "the request to be in flight", () => hub.stats().inFlightRequests === 1);
    assert.ok(existsSync(bus.path));
    await hub.close({ timeout: 100 });
    await assert.rejects(within(WAIT, "the pending request", pending), ClosedError);
    await Promise.all(disconnects);
    assert.equal(a.connected, false);
    assert.equal(b.connected, false);
    assert.equal(existsSync(bus.path), false);
    assert.throws(() => a.send(0, "hello"), ClosedError);
  } finally {
    await bus.close();
  }
});

test("Peer.flush resolves once everything sent has been written", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const got = collect(b, "chunk");
    const payload = new Uint8Array(64 * 1024);
    for (let i = 0; i < 50; i++) a.send(b.id, "chunk", payload);
    assert.ok(a.stats().queuedMessages > 0);
    await within(WAIT, "flush", a.flush());
    assert.equal(a.stats().queuedMessages, 0);
    await until(WAIT, "every chunk at b", () => got.length === 50);
  });
});

test("Peer.send throws QueueFullError when its own outgoing queue is full, and flush() makes room", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect({ maxQueueMessages: 10 });
    const b = await bus.connect();
    const got = collect(b, "n");
    for (let i = 0; i < 10; i++) a.send(b.id, "n", i);
    assert.throws(() => a.send(b.id, "n", 10), isCode(QueueFullError, ErrorCode.QueueFull));
    assert.throws(() => a.broadcast("n", 10), QueueFullError);
    await assert.rejects(a.request("/ipcbus/echo", 10), QueueFullError);
    await within(WAIT, "flush", a.flush());
    a.send(b.id, "n", 10);
    await until(WAIT, "eleven alerts at b", () => got.length === 11);
    assert.deepEqual(got.map((g) => g.data), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(a.stats().pendingRequests, 0);
  });
});

test("An alert handler that throws is reported as an error event and the peer carries on", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    b.on("bad", () => {
      throw new RangeError("handler bug");
    });
    b.on("bad-async", () => Promise.reject(new TypeError("async handler bug")));
    const errors = [nextEvent<Error>(WAIT, b, "error", (e) => e instanceof RangeError)];
    a.send(b.id, "bad");
    assert.equal((await errors[0]).message, "handler bug");
    const asyncError = nextEvent<Error>(WAIT, b, "error", (e) => e instanceof TypeError);
    a.send(b.id, "bad-async");
    assert.equal((await asyncError).message, "async handler bug");
    assert.equal(await a.request("/ipcbus/echo", 1), 1);
    assert.equal(b.connected, true);
  });
});

test("connect rejects with ConnectError when no hub serves the path", async () => {
  const dir = tempDir();
  try {
    await assert.rejects(connect({ path: `${dir.path}/nobody.sock`, timeout: 1000 }), ConnectError);
  } finally {
    dir.remove();
  }
});

test("The hub drops a peer that sends a frame claiming another sender, and a second hello", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const got = collect(a, "x");
    for (
      const [i, bad] of [{ k: "a", f: a.id, t: a.id, n: "x", d: encodeCbor(1) }, {
        k: "hello",
        v: 1,
        pid: 1,
        runtime: "x",
      }].entries()
    ) {
      const raw = await RawClient.dial(bus.path);
      try {
        await raw.write({ k: "hello", v: 1, pid: 4242, runtime: "python" });
        assert.equal((await raw.read())?.k, "welcome");
        await raw.write(bad);
        let last: Record<string, unknown> | null;
        const seen = [];
        for (let n = 0; n < 10 && (last = await raw.read()) !== null; n++) seen.push(last.k);
        assert.equal(seen.at(-1), "error", `${seen}`);
        assert.equal(await raw.read(), null);
      } finally {
        await raw.close();
      }
      await until(WAIT, "the error count", () => bus.hub.stats().errors === i + 1);
    }
    assert.equal(got.length, 0, "the spoofed alert was not delivered");
    assert.equal(bus.hub.stats().peers, 1);
    assert.equal(await a.request("/ipcbus/echo", "fine"), "fine");
  });
});

test("An alert whose destination left after send is reported as undeliverable, never dropped silently", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    const c = await bus.connect();
    const reported = nextEvent<UndeliverableDetail>(WAIT, a, "undeliverable");
    // hub.peer hears of the leave over its in-memory link, before `a` can read it from its socket.
    const sent = nextEvent(WAIT, bus.hub.peer, "peerleave").then(() => a.send(c.id, "too-late", 1));
    await c.close();
    await sent;
    assert.deepEqual(await reported, { to: c.id, name: "too-late", reason: "no_such_peer" });
    assert.equal(b.connected, true);
  });
});

test("The bus runs over memoryConnectionPair without a socket", async () => {
  const settings = { maxFrameBytes: 1 << 20, maxQueueMessages: 1000, maxQueueBytes: 1 << 24 };
  const hub = makeHub(undefined, { ...settings, handshakeTimeout: 1000, closeTimeout: 100 }, {
    ...settings,
    requestTimeout: 1000,
    dropOldestBroadcasts: false,
  });
  await startHub(hub);
  const peers: Peer[] = [];
  try {
    for (const name of ["m1", "m2"]) {
      const [hubSide, peerSide] = memoryConnectionPair();
      acceptConnection(hub, hubSide);
      const peer = makePeer(
        { ...settings, name, requestTimeout: 1000, dropOldestBroadcasts: false },
        () => new PeerClass(),
      );
      await attachPeer(peer, peerSide, 1000);
      peers.push(peer);
    }
    const [m1, m2] = peers;
    assert.deepEqual([m1.id, m2.id], [1, 2]);
    m2.handle("/add", ({ data }) => (data as number[]).reduce((x, y) => x + y, 0));
    const replies = collect(m1, "pong");
    m2.on("ping", (data, ctx) => ctx.reply("pong", data));
    await until(WAIT, "m2's handler at the hub", () => hub.stats().handlers === 1);
    assert.equal(await m1.request("/add", [1, 2, 3]), 6);
    m1.send("m2", "ping", "over memory");
    await until(WAIT, "the pong", () => replies.length === 1);
    assert.equal(replies[0].data, "over memory");
    assert.equal(hub.path, undefined);
  } finally {
    for (const peer of peers) await peer.close();
    await hub.close({ timeout: 100 });
  }
});

test("Hub forgets a request nobody answers a little after the requester's timeout, and counts it", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    const b = await bus.connect();
    b.handle("/never", () => new Promise(() => {}));
    await bus.handlersKnown(BUILTIN_HANDLERS + 1);
    await assert.rejects(a.request("/never", null, { timeout: 50 }), TimeoutError);
    assert.equal(bus.hub.stats().inFlightRequests, 1);
    await until(5000, "the hub to forget the request", () => bus.hub.stats().inFlightRequests === 0);
    assert.equal(bus.hub.stats().dropped.request_expired, 1);
  });
});

test("A request with a timeout beyond 2^31 ms still goes through: the hub gets a wait it can hold", async () => {
  await withBus(async (bus) => {
    const a = await bus.connect();
    assert.equal(await a.request("/ipcbus/echo", "far", { timeout: 2 ** 40 }), "far");
    assert.equal(await a.request("/ipcbus/echo", "forever", { timeout: Infinity }), "forever");
    assert.equal(a.connected, true);
  });
});
