/**
 * Soak: for a bounded time, peers connect and disconnect in a loop (closing
 * gracefully, or SIGKILLed while serving) while two long-lived peers, one on
 * Deno and one on Bun, exchange alerts and requests, some of which time out
 * or lose their responder. Afterwards nothing leaked: the hub is back to its
 * baseline of peers, handlers, requests in flight and open file
 * descriptors, its memory is bounded, the long-lived peers have no pending
 * request and nothing queued, and the hub's process exits by itself right
 * after `hub.close()` (a leaked timer or socket would keep it alive).
 *
 * `IPCBUS_SOAK_SECONDS` sets the duration: 20 s by default (CI), 120 s for
 * the full run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import type { Peer } from "../../mod.ts";
import { currentRuntime, type Runtime, until, within } from "../_helpers.ts";
import { fdCountOf, LOAD_TEST, type LoadProcess, loadScenario, mib, rssOf, WAIT } from "./_load_helpers.ts";

const SECONDS = Number(process.env.IPCBUS_SOAK_SECONDS ?? 20);
/**
 * The hub's resident memory during the soak may exceed its idle baseline by
 * at most this much. Churn of a few thousand connections a second lifts a
 * Deno hub's RSS by about 95 MiB within seconds (a Bun hub's by about 25),
 * where it stays: allocator high water and garbage not yet collected, not a
 * leak. A coarse ceiling; the leak check is {@linkcode LEAK_BOUND}.
 */
const RSS_BOUND = 192 * 1024 * 1024;
/**
 * What the hub keeps after the soak, once it is back to its baseline of
 * peers: the bytes live in its process after a full garbage collection
 * (tests/_memory.ts), at the end minus before the soak, may be at most this.
 * Not RSS, whose growth from the first half of the run to the second moved
 * by +10 to +49 MiB with the collector's timing on a loaded machine while
 * nothing leaked. The hub keeps up to 4 MiB of pooled write batches; the
 * rest is noise below 1 MiB. A hub that kept every frame it routed, or a
 * 64 KiB buffer per connection it closed, ends tens of MiB above (measured
 * with such a leak put in by hand: see the log line).
 */
const LEAK_BOUND = 8 * 1024 * 1024;
/** Requests settle only in these ways: answered, timed out, or their responder left. */
const OUTCOMES = new Set(["ok", "TimeoutError", "PeerLeftError"]);

type HubStats = Record<string, number> & { dropped: Record<string, number> };
const elapse = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function hubStats(control: Peer): Promise<HubStats> {
  return await control.request("/ipcbus/stats", null, { timeout: WAIT }) as HubStats;
}

/** The bytes live in the hub's process after a full garbage collection (tests/fixtures/load_hub.ts). */
async function hubLive(control: Peer): Promise<number> {
  return await control.request("/load/hub/live", null, { timeout: WAIT }) as number;
}

/** Asks the hub for its stats until `check` holds, for at most `ms`; returns the last stats. */
async function hubStatsWhen(control: Peer, what: string, check: (stats: HubStats) => boolean): Promise<HubStats> {
  const deadline = Date.now() + WAIT;
  while (true) {
    const stats = await hubStats(control);
    if (check(stats)) return stats;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${WAIT} ms waiting for ${what}: ${JSON.stringify(stats)}`);
    }
    await elapse(20);
  }
}

test(
  `Soak: ${SECONDS} s of peers connecting, leaving and being SIGKILLed while alerts and requests flow leaks no peer, request, handler, fd or memory`,
  { timeout: SECONDS * 1000 + LOAD_TEST.timeout },
  async () => {
    await loadScenario(async (s) => {
      const hub = await s.spawnHub(currentRuntime);
      const control = await s.connect({ name: "control" });
      const [l1, l2] = await Promise.all([
        s.spawnPeer("deno", { name: "l1", serve: "/soak/work", count: ["tick"] }),
        s.spawnPeer("bun", { name: "l2", serve: "/soak/work", count: ["tick"] }),
      ]);
      await Promise.all([l1, l2].map((p) => p.cmd("view", { count: 4 })));
      // The built-in routes, /load/hub/close and /load/hub/live, and /soak/work of each long-lived peer.
      const base = await hubStatsWhen(control, "the long-lived peers' routes", (stats) => stats.handlers === 7);
      const baseFds = fdCountOf(hub.pid);
      const baseRss = rssOf(hub.pid);
      const baseLive = await hubLive(control);
      assert.equal(base.peers, 3);
      // The stats request is answered within the hub's call to its handler: never in flight.
      assert.equal(base.inFlightRequests, 0, "nothing in flight");

      // Traffic between the long-lived peers, and two processes churning connections in themselves.
      const ms = SECONDS * 1000;
      const soaks = [l1.post("soak", { partner: "l2", ms }), l2.post("soak", { partner: "l1", ms })];
      const [c1, c2] = await Promise.all([s.spawnPeer("deno"), s.spawnPeer("bun")]);
      const churns = [
        c1.post("churn", { ms, partners: ["l1", "l2"] }),
        c2.post("churn", { ms, partners: ["l1", "l2"] }),
      ];

      // And processes that serve /soak/work for a moment and are SIGKILLed, maybe mid-request.
      const deadline = performance.now() + ms;
      let kills = 0;
      const rss: number[] = [];
      let peakPeers = 0;
      for (let i = 0; i < 1000 && performance.now() < deadline; i++) {
        const runtime: Runtime = i % 2 === 0 ? "deno" : "bun";
        const victim: LoadProcess = await s.spawnPeer(runtime, { serve: "/soak/work" });
        await elapse(100 + (i * 37) % 300);
        victim.signal("SIGKILL");
        await within(WAIT, "the killed peer's exit", victim.child.exited);
        kills++;
        rss.push(rssOf(hub.pid));
        peakPeers = Math.max(peakPeers, (await hubStats(control)).peers);
      }
      const soaked = await Promise.all(soaks.map((seq, i) => [l1, l2][i].result(seq, WAIT + ms)));
      const churned = await Promise.all(churns.map((seq, i) => [c1, c2][i].result(seq, WAIT + ms)));
      for (const c of [c1, c2]) await c.cmd("close");
      await Promise.all([c1, c2].map((c) => within(WAIT, "a churner's exit", c.child.exited)));

      const end = await hubStatsWhen(
        control,
        "the hub back to its baseline of peers, handlers and requests in flight",
        (stats) => stats.peers === base.peers && stats.handlers === base.handlers && stats.inFlightRequests === 0,
      );
      for (const l of [l1, l2]) {
        const stats = await l.cmd("stats");
        assert.equal(stats.pendingRequests, 0, `${l.runtime} long-lived peer has no pending request`);
        assert.equal(stats.queuedMessages, 0, `${l.runtime} long-lived peer has nothing queued`);
      }
      let fds = fdCountOf(hub.pid);
      await until(WAIT, "the hub's file descriptors back to baseline", () => {
        fds = fdCountOf(hub.pid);
        return Math.abs(fds - baseFds) <= 2;
      });
      const endRss = rssOf(hub.pid);
      const peakRss = Math.max(endRss, ...rss);
      const endLive = await hubLive(control);
      assert.ok(peakRss - baseRss < RSS_BOUND, `hub RSS peaked at ${mib(peakRss)} MiB vs ${mib(baseRss)} MiB idle`);
      assert.ok(
        endLive - baseLive < LEAK_BOUND,
        `the hub keeps ${mib(endLive - baseLive)} MiB more after the soak than before (${mib(baseLive)} → ${
          mib(endLive)
        } MiB live after a full collection), with the same peers`,
      );

      const outcomes: Record<string, number> = {};
      for (const r of soaked) {
        for (const [what, n] of Object.entries(r.outcomes as Record<string, number>)) {
          assert.ok(OUTCOMES.has(what), `a request settled as ${what}`);
          outcomes[what] = (outcomes[what] ?? 0) + n;
        }
      }
      assert.ok((outcomes.ok ?? 0) > 100, `answered requests: ${outcomes.ok}`);
      assert.ok((outcomes.TimeoutError ?? 0) > 0, "some requests timed out, and their late answers were dropped");
      const rounds = churned.reduce((sum, c) => sum + c.rounds, 0);
      assert.ok(rounds > 20, `churn rounds: ${rounds}`);
      assert.ok(kills > 5, `peers SIGKILLed: ${kills}`);

      // Close the hub over the bus; its process must then exit on its own, promptly.
      await control.request("/load/hub/close", { timeout: 500 }, { timeout: WAIT });
      await hub.next("the hub closed", (e) => e.ev === "closed");
      const closedAt = performance.now();
      const code = await within(5_000, "the hub process to exit by itself after close()", hub.child.exited);
      const exitMs = performance.now() - closedAt;
      assert.equal(code, 0);
      console.log(
        `soak (${currentRuntime} hub, ${SECONDS} s): ${rounds} connect/close rounds, ${kills} peers SIGKILLed, ` +
          `${end.peersJoined} joins / ${end.peersLeft} leaves, peak ${peakPeers} peers; ` +
          `requests ${JSON.stringify(outcomes)}, alerts ${soaked.reduce((sum, r) => sum + r.alerts, 0)}; ` +
          `hub peers ${base.peers} → ${end.peers}, handlers ${base.handlers} → ${end.handlers}, in flight ${end.inFlightRequests}, ` +
          `fds ${baseFds} → ${fds}, live ${mib(baseLive)} → ${mib(endLive)} MiB after a full collection, ` +
          `RSS ${mib(baseRss)} MiB idle, ${mib(peakRss)} MiB peak, ${mib(endRss)} MiB at the end; ` +
          `hub exited ${Math.round(exitMs)} ms after close()`,
      );
    });
  },
);
