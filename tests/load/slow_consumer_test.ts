/**
 * Slow consumers: a peer process frozen with SIGSTOP while others send to
 * it as fast as they can, through a hub in its own process whose queue for
 * each peer is bounded (1000 frames, 1 MiB). The hub refuses what does not
 * fit and tells each sender; senders wait for room; alerts between other
 * peers keep their pace; the hub's resident memory stays bounded; and a
 * peer that asked for `dropOldestBroadcasts` loses its oldest broadcasts
 * (counted) without holding the broadcasters back. A peer frozen for 5 s
 * holds no broadcaster back (its `flush()` does not wait for the frozen
 * peer, the fast peers get every broadcast); one whose queue stays full past
 * `slowConsumer.timeout` is cut loose.
 *
 * The first two tests run the same traffic with nobody frozen first, and
 * take the hub's peak RSS of that window as the baseline: the freeze must not
 * add more than {@linkcode RSS_BOUND}. Progress during a freeze is asserted
 * as counts and orderings (rates, and issue 13's 250 ms bar on `flush()`,
 * are printed, not asserted: speed is bench/'s).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { type Peer, type PeerInfo, PeerLeftError, QueueFullError, type UndeliverableDetail } from "../../mod.ts";
import { currentRuntime, nextEvent, within } from "../_helpers.ts";
import { fdCountOf, LOAD_TEST, type LoadProcess, loadScenario, mib, rssOf, WAIT } from "./_load_helpers.ts";

/** Resolves when `check` holds, re-checked every 20 ms, at most `ms`. */
async function until(ms: number, what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await elapse(20);
  }
}

const LIMITS = { maxQueueMessages: 1000, maxQueueBytes: 1024 * 1024 };
/** The hub's resident memory may grow by at most this much over its baseline while a peer is frozen. */
const RSS_BOUND = 64 * 1024 * 1024;
const PAD_BYTES = 16 * 1024;
/**
 * Local queue of the full-speed senders: well under the half of the hub's
 * queue left when `busy` comes, so they are slowed by busy/room rather than
 * refused by the thousand (refusals are still counted if they happen).
 */
const FAST_SENDER = { maxQueueMessages: 256 };
const other = currentRuntime === "deno" ? "bun" : "deno";

type Counts = Record<string, Record<string, number>>;
const at = (table: Counts, name: string, key: number | string): number => table[name]?.[String(key)] ?? 0;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const elapse = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The hub's stats, asked over the bus (its own peer serves /ipcbus/stats). */
async function hubStats(control: Peer): Promise<Record<string, number> & { dropped: Record<string, number> }> {
  return await control.request("/ipcbus/stats", null, { timeout: WAIT }) as never;
}

/** Samples the RSS of process `pid` every 25 ms while `during` runs; returns the highest reading. */
async function peakRss<T>(pid: number, during: Promise<T>): Promise<{ peak: number; value: T }> {
  let peak = rssOf(pid);
  let done = false;
  const settled = during.finally(() => (done = true));
  settled.catch(() => {});
  for (let i = 0; i < 4000 && !done; i++) {
    await elapse(25);
    peak = Math.max(peak, rssOf(pid));
  }
  return { peak, value: await settled };
}

/** Undeliverable reports that reach `peer`, in arrival order. */
function collectUndeliverable(peer: Peer): UndeliverableDetail[] {
  const reports: UndeliverableDetail[] = [];
  peer.addEventListener("undeliverable", (e) => void reports.push((e as CustomEvent<UndeliverableDetail>).detail));
  return reports;
}

test(
  "A peer frozen by SIGSTOP: what its bounded queue at the hub cannot take is refused and reported, senders wait for room, other alerts keep their pace, the hub's memory stays bounded",
  LOAD_TEST,
  async () => {
    await loadScenario(async (s) => {
      const hub = await s.spawnHub(currentRuntime, LIMITS);
      const control = await s.connect({ name: "control" });
      const [slow, pingA, pingB, f1, f2] = await Promise.all([
        s.spawnPeer(currentRuntime, { name: "slow", count: ["flood", "end"] }),
        s.spawnPeer(currentRuntime, { name: "ping-a" }),
        s.spawnPeer(other, { name: "ping-b", pong: true }),
        s.spawnPeer("deno", { name: "f1" }),
        s.spawnPeer("bun", { name: "f2" }),
      ]);
      const flooders: LoadProcess[] = [f1, f2];
      const s1 = await s.connect({ name: "s1" });
      const s1Refused = collectUndeliverable(s1);
      await Promise.all([slow, pingA, pingB, f1, f2].map((p) => p.cmd("view", { count: 8 })));
      const idleRss = rssOf(hub.pid);
      const idleFds = fdCountOf(hub.pid);

      // Alerts between two fast peers for the whole test: ping/pong round trips, 32 at a
      // time, as fast as they go. Their rate alone is the baseline.
      const ping = pingA.post("pingpong", { to: pingB.id, window: 32, tag: "ping", ms: 90_000 });
      await pingA.cmd("window", { name: "pong", ms: 300 });
      const before = await pingA.cmd("window", { name: "pong", ms: 1000 });
      // Then two processes send 16 KiB alerts to `slow`, waiting in flush() whenever refused.
      const floods = flooders.map((f) => f.post("flood", { to: slow.id, name: "flood", bytes: PAD_BYTES, ms: 90_000 }));
      await pingA.cmd("window", { name: "pong", ms: 300 });
      const { peak: baseRss, value: withFloods } = await peakRss(
        hub.pid,
        pingA.cmd("window", { name: "pong", ms: 1000 }),
      );

      slow.signal("SIGSTOP");
      let s1Accepted = 0;
      let s1Thrown = 0;
      let freezeRss = 0;
      let during = { count: 0, ms: 1 };
      let flushed = false;
      let roomCame = false;
      let s1Flush: Promise<void> | undefined;
      try {
        const pushing = (async () => {
          // This process sends to the frozen peer too, until send() throws.
          const pad = new Uint8Array(PAD_BYTES);
          for (let i = 0; i < 100_000; i++) {
            try {
              s1.send(slow.id, "flood", [s1Accepted + 1, pad]);
              s1Accepted++;
            } catch (err) {
              if (!(err instanceof QueueFullError)) throw err;
              s1Thrown++;
              break;
            }
            if (i % 16 === 15) await turn();
          }
          assert.equal(s1Thrown, 1, `send() threw QueueFullError after ${s1Accepted} alerts`);
          s1Flush = s1.flush().then(() => void (flushed = true));
          // A sender that keeps trying is refused on every try, synchronously, until room returns. Room can
          // return while the peer is frozen when the kernel's socket buffer takes in a quarter of the hub's
          // queue (it holds about 208 KiB here, the quarter is 256 KiB): then the try is accepted and counted.
          for (let i = 0; i < 200; i++) {
            try {
              s1.send(slow.id, "flood", [s1Accepted + 1]);
              s1Accepted++;
              roomCame = true;
              break;
            } catch (err) {
              if (!(err instanceof QueueFullError)) throw err;
              s1Thrown++;
            }
            await turn();
          }
        })();
        // At least 1.5 s, and until the fast peers made 10 times their window of round trips, 20 s at most.
        const measured = pingA.cmd("window", { name: "pong", ms: 1500, atLeast: 10 * 32, maxMs: 20_000 });
        ({ peak: freezeRss, value: [during] } = await peakRss(hub.pid, Promise.all([measured, pushing])));
        if (!roomCame) {
          assert.equal(flushed, false, "flush() waits while the destination is frozen");
          for (const f of flooders) {
            const { phase } = await f.cmd("counts");
            assert.equal(phase, "flood: waiting in flush", `${f.runtime} flooder is held back`);
          }
        }
        const stats = await hubStats(control);
        assert.ok(stats.dropped.queue_full > 0, `the hub refused alerts for the frozen peer: ${stats.dropped}`);
      } finally {
        slow.signal("SIGCONT");
      }

      await within(WAIT, "s1.flush() after SIGCONT", s1Flush!);
      for (const f of flooders) await f.cmd("stop", { tag: "flood" });
      const [r1, r2] = await Promise.all(floods.map((seq, i) => flooders[i].result(seq)));
      // Every report for s1's alerts precedes this answer.
      await s1.request("/ipcbus/echo", null, { timeout: WAIT });
      s1.send(slow.id, "end", 1);
      await Promise.all(flooders.map((f) => f.cmd("end", { to: [slow.id] })));
      const got = await slow.cmd("report", { ends: [s1.id, f1.id, f2.id] });
      const [c1, c2] = await Promise.all(flooders.map((f) => f.cmd("counts")));
      await pingA.cmd("stop", { tag: "ping" });
      const pings = await pingA.result(ping);

      assert.equal(got.disorder, 0, "what reached the frozen peer came once and in order");
      for (const detail of s1Refused) assert.deepEqual(detail, { to: slow.id, name: "flood", reason: "queue_full" });
      assert.equal(at(got.received, "flood", s1.id) + s1Refused.length, s1Accepted, "s1: received + refused = sent");
      for (const [r, c, f] of [[r1, c1, f1], [r2, c2, f2]] as const) {
        assert.equal(
          at(got.received, "flood", f.id) + at(c.undeliverable, "flood", slow.id),
          r.accepted,
          `${f.runtime} flooder: received + refused = sent`,
        );
      }
      const refused = s1Refused.length + at(c1.undeliverable, "flood", slow.id) +
        at(c2.undeliverable, "flood", slow.id);
      const endStats = await hubStats(control);
      assert.deepEqual(
        endStats.dropped,
        { queue_full: refused },
        "every refusal was counted and reported to its sender",
      );
      const rateBefore = before.count / before.ms * 1000;
      const rateWithFloods = withFloods.count / withFloods.ms * 1000;
      const rateDuring = during.count / during.ms * 1000;
      // Head-of-line blocking would stop the fast peers once `slow` stops reading: at most the 32 round trips in
      // flight would complete. A count, not a rate: rates on a shared machine swing by more than any bound; the
      // window stretches (20 s at most) until the count is reached.
      assert.ok(during.count >= 10 * 32, `only ${during.count} round trips while the peer was frozen`);
      assert.ok(freezeRss - baseRss < RSS_BOUND, `hub RSS ${mib(freezeRss)} MiB vs ${mib(baseRss)} MiB before`);
      console.log(
        `slow consumer (${currentRuntime} hub, queue ${LIMITS.maxQueueMessages} frames / ${
          mib(LIMITS.maxQueueBytes)
        } MiB, 16 KiB alerts): s1 sent ${s1Accepted}, then QueueFullError ${s1Thrown} times${
          roomCame ? ", then room while frozen" : " until SIGCONT"
        }; ` +
          `flooders sent ${r1.accepted} + ${r2.accepted}; refused and reported ${refused}, lost 0; ` +
          `round-trip rate ${Math.round(rateBefore)}/s alone, ${Math.round(rateWithFloods)}/s beside the floods, ${
            Math.round(rateDuring)
          }/s frozen (${Math.round(rateDuring / rateBefore * 100)}% of alone), ${pings.pongs} round trips; ` +
          `hub RSS ${mib(idleRss)} MiB idle, ${mib(baseRss)} MiB peak before, ${mib(freezeRss)} MiB peak frozen (+${
            mib(freezeRss - baseRss)
          }); hub fds ${idleFds}`,
      );
    });
  },
);

test(
  "A frozen peer with dropOldestBroadcasts loses its oldest broadcasts, counted as drop_oldest, and the broadcasters are not held back",
  LOAD_TEST,
  async () => {
    await loadScenario(async (s) => {
      const hub = await s.spawnHub(currentRuntime, LIMITS);
      const control = await s.connect({ name: "control" });
      const [frozen, awake, b1, b2] = await Promise.all([
        s.spawnPeer(currentRuntime, { name: "frozen", dropOldestBroadcasts: true, count: ["bc", "end"] }),
        s.spawnPeer(other, { name: "awake", count: ["bc", "end"] }),
        s.spawnPeer("deno", { name: "b1", ...FAST_SENDER }),
        s.spawnPeer("bun", { name: "b2", ...FAST_SENDER }),
      ]);
      const broadcasters: LoadProcess[] = [b1, b2];
      await Promise.all([frozen, awake, b1, b2].map((p) => p.cmd("view", { count: 6 })));
      const idleRss = rssOf(hub.pid);
      const sentSoFar = async () => {
        const counts = await Promise.all(broadcasters.map((b) => b.cmd("counts")));
        return { n: counts.reduce((sum, c) => sum + at(c.sent, "bc", -1), 0), t: performance.now() };
      };

      const runs = broadcasters.map((b) => b.post("flood", { to: null, name: "bc", bytes: 256, ms: 90_000 }));
      await elapse(300);
      const start = await sentSoFar();
      const { peak: baseRss } = await peakRss(hub.pid, elapse(1000));
      const warm = await sentSoFar();
      let peak = 0;
      let frozenEnd = warm;
      frozen.signal("SIGSTOP");
      try {
        // Until the broadcasters have sent several times the frozen peer's queue and the hub has dropped
        // its oldest: counts, not a fixed window, so a slow machine takes longer instead of failing.
        const overflowed = async () => {
          for (let i = 0; i < 1200; i++) {
            const now = await sentSoFar();
            const dropped = (await hubStats(control)).dropped.drop_oldest ?? 0;
            if (now.n - warm.n > LIMITS.maxQueueMessages * 5 && dropped > 0) return;
            await elapse(25);
          }
        };
        ({ peak } = await peakRss(
          hub.pid,
          within(WAIT * 2, "broadcasts to overflow the frozen peer's queue", overflowed()),
        ));
        frozenEnd = await sentSoFar();
        for (const b of broadcasters) await b.cmd("stop", { tag: "bc" });
      } finally {
        frozen.signal("SIGCONT");
      }
      const results = await Promise.all(broadcasters.map((b, i) => b.result(runs[i])));
      const sent = results.reduce((sum, r) => sum + r.accepted, 0);
      const rateBefore = (warm.n - start.n) / (warm.t - start.t) * 1000;
      const rateFrozen = (frozenEnd.n - warm.n) / (frozenEnd.t - warm.t) * 1000;

      await Promise.all(broadcasters.map((b) => b.cmd("end", { to: [frozen.id, awake.id] })));
      const ends = broadcasters.map((b) => b.id);
      const [gotFrozen, gotAwake] = await Promise.all([frozen, awake].map((p) => p.cmd("report", { ends })));
      const counts = await Promise.all(broadcasters.map((b) => b.cmd("counts")));
      const stats = await hubStats(control);
      const toFrozen = counts.reduce((sum, c) => sum + at(c.undeliverable, "bc", frozen.id), 0);
      assert.equal(toFrozen, 0, "no broadcast to the frozen peer was refused: the oldest were dropped instead");
      const dropped = stats.dropped.drop_oldest ?? 0;
      assert.ok(dropped > 0, "the frozen peer's oldest broadcasts were dropped");
      const reachedFrozen = broadcasters.reduce((sum, b) => sum + at(gotFrozen.received, "bc", b.id), 0);
      assert.equal(reachedFrozen + dropped, sent, "frozen peer: received + dropped oldest = broadcast");
      assert.equal(gotFrozen.disorder, 0, "what was left arrived in order");
      for (const [i, b] of broadcasters.entries()) {
        assert.equal(
          at(gotAwake.received, "bc", b.id) + at(counts[i].undeliverable, "bc", awake.id),
          results[i].accepted,
          "awake peer: received + refused = broadcast",
        );
      }
      const refused = counts.reduce((sum, c) => sum + (c.reasons.queue_full ?? 0), 0);
      assert.equal(stats.dropped.queue_full ?? 0, refused, "refusals (for live peers that fell behind) were reported");
      assert.ok(frozenEnd.n - warm.n > LIMITS.maxQueueMessages * 5, "broadcasters kept going during the freeze");
      assert.ok(peak - baseRss < RSS_BOUND, `hub RSS ${mib(peak)} MiB vs ${mib(baseRss)} MiB before`);
      console.log(
        `drop oldest (${currentRuntime} hub): ${sent} broadcasts, ${Math.round(rateBefore)}/s before, ${
          Math.round(rateFrozen)
        }/s frozen (${Math.round(rateFrozen / rateBefore * 100)}%); frozen peer got ${reachedFrozen}, ` +
          `${dropped} dropped oldest, refused ${refused} (for live peers, reported); ` +
          `hub RSS ${mib(idleRss)} MiB idle, ${mib(baseRss)} MiB peak before, ${mib(peak)} MiB peak frozen (+${
            mib(peak - baseRss)
          })`,
      );
    });
  },
);

const FREEZE_MS = 5_000;
/**
 * The freeze goes on at least this long after the broadcaster's first broadcast was refused for the
 * frozen peer (its queue at the hub full). With default limits the queue takes 4 MiB, a fraction of a
 * second of broadcasts on a quiet machine, 2-3 s on a loaded one.
 */
const PAST_FULL_MS = 4_000;
/**
 * What this test asserts of the broadcaster's flush() during the freeze: that it does not wait for the
 * frozen peer. Before issue 13's fix it did, from shortly after the frozen peer's queue filled until
 * SIGCONT: at least {@linkcode PAST_FULL_MS} less the few hundred broadcasts that fill the broadcaster's
 * own buffers. A flush() still waiting when measured counts with how long it has waited
 * (tests/fixtures/load_peer.ts, `flushes`). Issue 13's bar, at most 250 ms, is a speed on a quiet machine,
 * printed here (90-113 ms measured) and not asserted: on a loaded 2-core machine scheduling delays alone
 * stretched flushes with nobody frozen to 390 ms, and during the freeze to 331, 534 and 1 044 ms, with
 * nothing waiting for the frozen peer.
 */
const FLUSH_BOUND_MS = PAST_FULL_MS / 2;

test(
  "A peer frozen by SIGSTOP for 5 s or more does not hold a broadcaster back: its flush() does not wait for the frozen peer, the fast peers get every broadcast, and what the frozen peer could not take is refused for it alone, counted and reported in aggregate",
  LOAD_TEST,
  async () => {
    await loadScenario(async (s) => {
      // Default queue limits, as a user would have them; the policy that cuts a slow consumer loose is set far
      // beyond the freeze, so that this test sees refusals only.
      const hub = await s.spawnHub(currentRuntime, { slowConsumer: { timeout: 60_000 } });
      // The test process is a destination of the broadcasts too, and the busiest process here: it drops its oldest
      // rather than be counted among the peers that fell behind.
      const control = await s.connect({ name: "control", dropOldestBroadcasts: true });
      const [frozen, fastA, fastB, sender] = await Promise.all([
        s.spawnPeer(currentRuntime, { name: "frozen", count: ["bc", "end"] }),
        s.spawnPeer("deno", { name: "fast-a", count: ["bc", "end"] }),
        s.spawnPeer("bun", { name: "fast-b", count: ["bc", "end"] }),
        s.spawnPeer(other, { name: "broadcaster", ...FAST_SENDER }),
      ]);
      await Promise.all([frozen, fastA, fastB, sender].map((p) => p.cmd("view", { count: 6 })));
      const sentSoFar = async () => ({ n: at((await sender.cmd("counts")).sent, "bc", -1), t: performance.now() });

      // 1 KiB broadcasts flat out, flush() awaited on QueueFullError and after every 64 broadcasts, each timed.
      const run = sender.post("flood", { to: null, name: "bc", bytes: 1024, ms: 90_000, flushEvery: 64 });
      await elapse(300);
      const start = await sentSoFar();
      // The hub's memory while every peer reads, and during the freeze: printed, not asserted. The broadcaster goes
      // twice as fast once the frozen peer no longer paces it, and a Bun hub's peak then follows its garbage (+15 to
      // +50 MiB in eight runs; +0 to +39 MiB in ten before broadcasts were shared): what a frozen peer may keep alive
      // is asserted in tests/frame_writer_test.ts.
      const { peak: baseRss } = await peakRss(hub.pid, elapse(2000));
      const warm = await sentSoFar();
      const beforeFlushes = await sender.cmd("flushes");
      let frozenEnd = warm;
      let freezeFlushes = beforeFlushes;
      let result: Record<string, number> | undefined;
      let freezeRss = 0;
      frozen.signal("SIGSTOP");
      const frozenAt = performance.now();
      try {
        // Refusals are reported every 250 ms: the queue was full by the time the first report is seen. A
        // broadcaster held back by the frozen peer may never fill its queue: a flush() waiting past the bound
        // ends this wait too, and fails below.
        await until(WAIT, "a broadcast refused for the frozen peer", async () => {
          const counts = await sender.cmd("counts");
          return at(counts.undeliverable, "bc", frozen.id) > 0 || counts.flushPendingMs > FLUSH_BOUND_MS;
        });
        freezeRss = (await peakRss(hub.pid, elapse(Math.max(PAST_FULL_MS, FREEZE_MS - (performance.now() - frozenAt)))))
          .peak;
        frozenEnd = await sentSoFar();
        freezeFlushes = await sender.cmd("flushes");
        // What it measures: from calling flush() to its promise settling (or to now, if it has not), in the
        // broadcaster's process. Waiting for the frozen peer would take the rest of the freeze; not waiting, the
        // hub's stall detection (100 ms) at most, plus writing 64 KiB, plus the machine's scheduling delays.
        assert.ok(
          freezeFlushes.maxMs < FLUSH_BOUND_MS,
          `longest flush() during the ${Math.round(performance.now() - frozenAt)} ms freeze: ${
            Math.round(freezeFlushes.maxMs)
          } ms${
            freezeFlushes.pendingMs > 0 ? ` (one still waiting for ${Math.round(freezeFlushes.pendingMs)} ms)` : ""
          }, bound ${FLUSH_BOUND_MS} ms: it waits for the frozen peer`,
        );
        await sender.cmd("stop", { tag: "bc" });
        // The broadcaster finishes (everything routed) while the peer is still frozen.
        result = await sender.result(run, 15_000);
      } finally {
        frozen.signal("SIGCONT");
      }
      await sender.cmd("end", { to: [frozen.id, fastA.id, fastB.id] });
      const ends = [sender.id];
      const [gotFrozen, gotA, gotB] = await Promise.all([frozen, fastA, fastB].map((p) => p.cmd("report", { ends })));
      const counts = await sender.cmd("counts");
      const stats = await hubStats(control);
      const sent = result!.accepted;
      const rateBefore = (warm.n - start.n) / (warm.t - start.t) * 1000;
      const rateFrozen = (frozenEnd.n - warm.n) / (frozenEnd.t - warm.t) * 1000;
      const refusedFrozen = at(counts.undeliverable, "bc", frozen.id);
      // The broadcaster's own copies too, when it reads them slower than it sends.
      const refusedSelf = at(counts.undeliverable, "bc", sender.id);
      const summary =
        `${currentRuntime} hub, ${other} broadcaster: ${sent} broadcasts of 1 KiB, ${
          Math.round(rateBefore)
        }/s before, ${Math.round(rateFrozen)}/s frozen (${
          Math.round(rateFrozen / rateBefore * 100)
        }%); flush() ${freezeFlushes.count} times during the freeze, longest ${
          Math.round(freezeFlushes.maxMs)
        } ms (before: ${beforeFlushes.count} times, longest ${Math.round(beforeFlushes.maxMs)} ms); ` +
        `frozen peer got ${
          at(gotFrozen.received, "bc", sender.id)
        }, refused ${refusedFrozen} (and ${refusedSelf} of the broadcaster's own copies) in ${counts.reports} reports; fast peers got ${
          at(gotA.received, "bc", sender.id)
        } and ${at(gotB.received, "bc", sender.id)}; hub RSS ${mib(baseRss)} MiB peak before, ${
          mib(freezeRss)
        } MiB peak frozen`;
      console.log(`broadcast past a frozen peer (${summary})`);

      for (const [got, p] of [[gotA, fastA], [gotB, fastB]] as const) {
        assert.equal(at(got.received, "bc", sender.id), sent, `${p.runtime} fast peer got every broadcast`);
        assert.equal(got.disorder, 0, "in order, once each");
      }
      assert.ok(refusedFrozen > 0, "broadcasts the frozen peer could not take were refused");
      assert.equal(
        at(gotFrozen.received, "bc", sender.id) + refusedFrozen,
        sent,
        "frozen peer: received + refused = sent",
      );
      assert.equal(gotFrozen.disorder, 0, "what reached the frozen peer came once and in order");
      const refusedAll = Object.values(counts.undeliverable.bc ?? {}).reduce((a: number, b) => a + (b as number), 0);
      assert.equal(
        refusedAll,
        refusedFrozen + refusedSelf,
        `refused for nobody else: ${JSON.stringify(counts.undeliverable)}`,
      );
      // The end markers, sent to each peer once the broadcasts are done, may be refused too (and sent again).
      assert.equal(
        stats.dropped.queue_full,
        refusedAll + at(counts.undeliverable, "end", frozen.id),
        "every refusal was counted at the hub",
      );
      // Aggregated: far fewer reports than refusals (each report carries a count).
      assert.ok(counts.reports * 10 <= refusedFrozen, `${counts.reports} reports for ${refusedFrozen} refusals`);
      assert.ok(freezeFlushes.count > 0, "the broadcaster flushed during the freeze");
    });
  },
);

test(
  "A peer whose queue at the hub stays full longer than slowConsumer.timeout is cut loose as slow_consumer: the others see it leave with that reason, requests it was serving fail at once, and it learns why when it wakes",
  LOAD_TEST,
  async () => {
    await loadScenario(async (s) => {
      // The hub keeps the connection of a peer it cut loose for as long again, for it to wake and read why.
      const timeout = 2000;
      await s.spawnHub(currentRuntime, { ...LIMITS, slowConsumer: { timeout } });
      const control = await s.connect({ name: "control" });
      const [victim, flooder] = await Promise.all([
        s.spawnPeer(currentRuntime, { name: "victim", serve: "/victim/work", count: ["flood"] }),
        s.spawnPeer(other, { name: "flooder" }),
      ]);
      await Promise.all([victim, flooder].map((p) => p.cmd("view", { count: 4 })));
      const left = nextEvent<PeerInfo & { reason: string }>(WAIT, control, "peerleave", (d) => d.id === victim.id);
      // A request of its own, pending when it freezes: the hub's own peer answers it after 20 s.
      const own = victim.post("request", { route: "/ipcbus/delay", data: { delay: 20_000 }, timeout: 25_000 });
      await until(WAIT, "the victim's request to reach the hub", async () =>
        // The stats request is answered within the call (its handler returns a value): it is not in flight.
        (await hubStats(control)).inFlightRequests > 0);

      victim.signal("SIGSTOP");
      let leftAfter = 0;
      let served: unknown;
      try {
        // A request it is serving, then alerts until its bounded queue at the hub is full.
        const start = performance.now();
        const serving = control.request("/victim/work", { delay: 0 }, { timeout: 20_000 }).then(
          () => new Error("answered by a frozen peer"),
          (err) => err,
        );
        const flood = flooder.post("flood", { to: victim.id, name: "flood", bytes: PAD_BYTES, ms: 60_000 });
        const leave = await left;
        leftAfter = performance.now() - start;
        assert.equal(leave.reason, "slow_consumer");
        served = await within(WAIT, "the request the victim was serving to fail", serving);
        await flooder.cmd("stop", { tag: "flood" });
        // The flooder waited in flush() for the victim; its leaving ends that wait.
        const sent = await flooder.result(flood);
        assert.ok(sent.queueFull > 0, "the victim's queue was full");
      } finally {
        victim.signal("SIGCONT");
      }
      assert.ok(served instanceof PeerLeftError, `the request it was serving failed with ${served}`);
      assert.ok(leftAfter >= timeout, `cut loose after ${Math.round(leftAfter)} ms, not before its timeout`);
      const stats = await hubStats(control);
      assert.equal(stats.slowConsumers, 1, "counted");
      assert.equal(stats.peers, 2, "the others stay");

      // Woken, the victim reads what was queued before, then why it was cut loose.
      const error = await victim.next("an error event", (e) => e.ev === "error");
      assert.equal(error.error.code, "slow_consumer");
      const disconnect = await victim.next("a disconnect event", (e) => e.ev === "disconnect");
      assert.equal(disconnect.reason, "slow_consumer");
      const ownAnswer = await victim.answer(own);
      assert.equal(ownAnswer.ev, "failed");
      assert.equal(ownAnswer.error.code, "slow_consumer", "its own pending request failed with the reason");
      console.log(
        `slow consumer cut loose (${currentRuntime} hub, timeout ${timeout} ms): left ${
          Math.round(leftAfter)
        } ms after it froze; the request it served failed with ${(served as Error).name}`,
      );
    });
  },
);
