/**
 * `connect()`'s `reconnect` option with real hub processes: the hub child
 * (tests/fixtures/bus_hub.ts, Deno or Bun) is SIGKILLed and a new one is
 * started on the same path; the peer in the test process joins it again,
 * keeps its id, sends what was queued meanwhile and announces its routes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ClosedError,
  connect,
  ConnectError,
  type ConnectOptions,
  type DisconnectDetail,
  type Peer,
  QueueFullError,
  type ReconnectDetail,
  serve,
  type UndeliverableDetail,
} from "../mod.ts";
import { nextEvent, type Runtime, runtimes, tempDir, until, within } from "./_helpers.ts";
import { JsonChild } from "./_json_child.ts";

const WAIT = 15_000;
/** Above Bun's default of 5 s per test, so that the bounded waits below are what fails first. */
const PROCESS_TEST = { timeout: 60_000 };
const FAST_RETRIES: ConnectOptions["reconnect"] = { delay: 20, maxDelay: 200, maxAttempts: 200 };

/** A temp socket path, the hub children started on it and the peers connected, all stopped afterwards. */
async function withPath(
  body: (path: string, spawnHub: (runtime: Runtime) => Promise<JsonChild>, peers: Peer[]) => Promise<void>,
) {
  const dir = tempDir("ipcbus-reconnect-");
  const children: JsonChild[] = [];
  const peers: Peer[] = [];
  const path = `${dir.path}/bus.sock`;
  const spawnHub = async (runtime: Runtime) => {
    const child = new JsonChild(runtime, "tests/fixtures/bus_hub.ts", [path], WAIT);
    children.push(child);
    child.ready = await child.next("ready", (e) => e.ev === "ready");
    return child;
  };
  try {
    await body(path, spawnHub, peers);
  } finally {
    for (const peer of peers) await peer.close();
    await Promise.all(children.map((child) => child.stop()));
    dir.remove();
  }
}

for (const [first, second] of [[runtimes[0], runtimes[1]], [runtimes[1], runtimes[0]]] as const) {
  test(
    `A peer with reconnect rejoins a hub restarted after SIGKILL (${first} hub, then ${second}): same id, queued sends, routes`,
    PROCESS_TEST,
    async () => {
      await withPath(async (path, spawnHub, peers) => {
        const hub1 = await spawnHub(first);
        const peer = await connect({ path, reconnect: FAST_RETRIES });
        peers.push(peer);
        assert.equal(peer.id, 1);
        const echoes: number[] = [];
        peer.on("echo", (n: number) => void echoes.push(n));
        peer.handle("/where", () => ({ id: peer.id }));

        const lost = nextEvent<DisconnectDetail>(WAIT, peer, "disconnect");
        hub1.signal("SIGKILL");
        const detail = await lost;
        assert.match(detail.reason, /went away without closing/);
        assert.equal(detail.reconnecting, true);
        assert.equal(peer.connected, false);

        for (let i = 0; i < 3; i++) peer.send(peer.id, "echo", i);
        const queuedRequest = peer.request("/ipcbus/echo", "queued while away", { timeout: WAIT });
        const back = nextEvent<ReconnectDetail>(WAIT, peer, "reconnect");
        const hub2 = await spawnHub(second);
        const again = await back;
        assert.deepEqual([again.id, again.previousId], [1, 1]);
        assert.ok(again.attempts >= 1);
        assert.equal(peer.connected, true);

        assert.equal(await within(WAIT, "the queued request", queuedRequest), "queued while away");
        await until(WAIT, "the queued alerts", () => echoes.length === 3);
        assert.deepEqual(echoes, [0, 1, 2]);
        // Bounded by its deadline; each round is one command to the hub child, no sleep.
        const deadline = Date.now() + WAIT;
        while ((await hub2.cmd("hub_stats")).handlers !== 4) {
          if (Date.now() > deadline) throw new Error("The route was not announced to the new hub");
        }
        // The hub's own peer asks without `to`: only the route announced to the new hub can answer.
        assert.deepEqual((await hub2.cmd("request", { route: "/where" })).value, { id: 1 });
      });
    },
  );
}

test(
  "Without reconnect a SIGKILLed hub ends the peer: disconnect names it, closed resolves with ClosedError",
  PROCESS_TEST,
  async () => {
    await withPath(async (path, spawnHub, peers) => {
      const hub = await spawnHub(runtimes[1]);
      const peer = await connect({ path });
      peers.push(peer);
      const lost = nextEvent<DisconnectDetail>(WAIT, peer, "disconnect");
      hub.signal("SIGKILL");
      const detail = await lost;
      assert.match(detail.reason, /went away without closing/);
      assert.equal(detail.reconnecting, false);
      const err = await within(WAIT, "closed", peer.closed);
      assert.ok(err instanceof ClosedError);
      assert.throws(() => peer.send(0, "x"), ClosedError);
    });
  },
);

test("A peer whose id was taken meanwhile reconnects with another id and says so", async () => {
  await withPath(async (path, _spawnHub, peers) => {
    let hub = await serve({ path });
    const a = await connect({ path, reconnect: { delay: 1000, maxDelay: 1000 } });
    peers.push(a);
    const lost = nextEvent(WAIT, a, "disconnect");
    await hub.close({ timeout: 100 });
    await lost;
    const back = nextEvent<ReconnectDetail>(WAIT, a, "reconnect");
    const joined: number[] = [];
    a.addEventListener("peerjoin", (e) => void joined.push(e.detail.id));
    hub = await serve({ path });
    try {
      const b = await connect({ path });
      peers.push(b);
      assert.equal(b.id, 1, "b connects before a's first attempt, a second later");
      const detail = await back;
      assert.deepEqual([detail.id, detail.previousId], [2, 1]);
      assert.equal(a.id, 2);
      assert.deepEqual((await a.peers()).map((p) => p.id), [0, 1, 2]);
      // The view is refreshed with events: the new hub's peer 0 and b, on a's old id, joined; a itself did not.
      assert.deepEqual(joined.sort(), [0, 1]);
    } finally {
      for (const peer of peers) await peer.close();
      await hub.close({ timeout: 100 });
    }
  });
});

test("Sends while reconnecting are bounded by maxQueueMessages and throw QueueFullError past it", async () => {
  await withPath(async (path, _spawnHub, peers) => {
    const hub = await serve({ path });
    const peer = await connect({ path, reconnect: { delay: 60_000 }, maxQueueMessages: 4 });
    peers.push(peer);
    const lost = nextEvent(WAIT, peer, "disconnect");
    await hub.close({ timeout: 100 });
    await lost;
    for (let i = 0; i < 4; i++) peer.send(peer.id, "x", i);
    assert.throws(() => peer.send(peer.id, "x", 4), QueueFullError);
    await assert.rejects(peer.request("/ipcbus/echo", 1), QueueFullError);
  });
});

test("A peer that runs out of attempts closes: closed, queued requests and alerts report the last error", async () => {
  await withPath(async (path, _spawnHub, peers) => {
    const hub = await serve({ path });
    const peer = await connect({ path, reconnect: { maxAttempts: 2, delay: 10 } });
    peers.push(peer);
    const lost = nextEvent(WAIT, peer, "disconnect");
    await hub.close({ timeout: 100 });
    await lost;
    const undeliverable = nextEvent<UndeliverableDetail>(WAIT, peer, "undeliverable");
    peer.send(peer.id, "x", 1);
    const request = peer.request("/ipcbus/echo", 1);
    const err = await within(WAIT, "closed", peer.closed);
    assert.ok(err instanceof ConnectError, String(err));
    await assert.rejects(request, ConnectError);
    assert.deepEqual(await undeliverable, { to: peer.id, name: "x", reason: "closed" });
    assert.throws(() => peer.send(peer.id, "x", 2), ClosedError);
  });
});
