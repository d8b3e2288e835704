/**
 * Load: 16 peer processes, 8 on Deno and 8 on Bun, send alerts round-robin
 * to each other and broadcasts to all, as fast as flow control lets them,
 * through a hub in the test process. Afterwards every message is accounted
 * for, per (sender, destination) pair: it arrived exactly once, in order, or
 * its sender was told it was undeliverable, and the hub counted the drop.
 *
 * `IPCBUS_LOAD_SECONDS` sets how long the peers send (default 5).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { serve } from "../../mod.ts";
import { currentRuntime, until } from "../_helpers.ts";
import { LOAD_TEST, type LoadEvent, type LoadProcess, loadScenario, WAIT } from "./_load_helpers.ts";

const SECONDS = Number(process.env.IPCBUS_LOAD_SECONDS ?? 5);
const PER_RUNTIME = 8;

type Counts = Record<string, Record<string, number>>;
const at = (table: Counts, name: string, key: number | string): number => table[name]?.[String(key)] ?? 0;

/**
 * Two settings. With the default queues (16 384 frames, as many locally as
 * the hub's queue for a peer holds), a sender still has more queued locally
 * when `busy` reaches it than the half of the hub's queue left, so under
 * overload the hub refuses some alerts: each must be reported to its sender.
 * With 4096-frame local queues and 65 536-frame queues at the hub, what 16
 * senders can have queued or in their sockets when `busy` comes (about
 * 16 × (4096 + a socket buffer of some 8000 small frames), spread over 17
 * destinations) stays under that half, so nothing may be refused at all.
 */
const SETTINGS = [
  { label: "default queues", connect: {}, hub: {}, zeroDrops: false },
  {
    label: "4096-frame local queues",
    connect: { maxQueueMessages: 4096 },
    hub: { maxQueueMessages: 65_536, maxQueueBytes: 16 * 1024 * 1024 },
    zeroDrops: true,
  },
] as const;

for (const { label, connect, hub: hubOptions, zeroDrops } of SETTINGS) {
  test(
    `16 peers (8 Deno, 8 Bun) with ${label} sending alerts and broadcasts at full speed for ${SECONDS} s lose nothing: each message arrives once or is reported undeliverable`,
    LOAD_TEST,
    async () => {
      await loadScenario(async (s) => {
        const hub = await serve({ path: s.path, ...hubOptions });
        s.onCleanup(() => hub.close({ timeout: 200 }));
        // The hub's own peer is a destination of every broadcast: count what it gets too.
        const hubGot = new Map<number, number>();
        const hubLast = new Map<number, number>();
        const hubEnds = new Set<number>();
        let hubDisorder = 0;
        hub.peer.on("b", (data, ctx) => {
          hubGot.set(ctx.sender, (hubGot.get(ctx.sender) ?? 0) + 1);
          if ((data as number) <= (hubLast.get(ctx.sender) ?? 0)) hubDisorder++;
          hubLast.set(ctx.sender, data as number);
        });
        hub.peer.on("end", (_data, ctx) => void hubEnds.add(ctx.sender));

        const started = performance.now();
        const peers: LoadProcess[] = await Promise.all(
          Array.from(
            { length: PER_RUNTIME * 2 },
            (_, i) => s.spawnPeer(i % 2 === 0 ? "deno" : "bun", { count: ["a", "b", "end"], ...connect }),
          ),
        );
        const ids = peers.map((p) => p.id);
        // Each sees the 16 peers and the hub's own: nobody sends to a peer it does not know yet.
        await Promise.all(peers.map((p) => p.cmd("view", { count: ids.length + 1 })));
        const startupMs = performance.now() - started;

        const runs = peers.map((p) =>
          p.post("load", { peers: ids, also: [0], ms: SECONDS * 1000, broadcastEvery: 16 })
        );
        const loads = await Promise.all(peers.map((p, i) => p.result(runs[i], SECONDS * 1000 + 60_000)));
        const reports: LoadEvent[] = await Promise.all(peers.map((p) => p.cmd("report", { ends: ids })));
        await until(WAIT, "end markers at the hub's own peer", () => hubEnds.size === ids.length);
        const hubStats = hub.stats();

        let alertsSent = 0;
        let broadcastsSent = 0;
        let delivered = 0;
        let undeliverable = 0;
        for (const r of reports) {
          assert.equal(r.disorder, 0, `peer ${r.id} saw no duplicate and no reorder`);
          assert.equal(r.stats.pendingRequests, 0);
          for (const reason of Object.keys(r.reasons)) assert.equal(reason, "queue_full", `peer ${r.id}: ${reason}`);
          undeliverable += Object.values(r.undeliverable as Counts).reduce(
            (sum, row) => sum + Object.values(row).reduce((a, b) => a + b, 0),
            0,
          );
        }
        for (const from of reports) {
          const broadcasts = at(from.sent, "b", -1);
          broadcastsSent += broadcasts;
          for (const to of reports) {
            const gotB = at(to.received, "b", from.id);
            delivered += gotB;
            assert.equal(
              gotB + at(from.undeliverable, "b", to.id),
              broadcasts,
              `broadcasts ${from.id} → ${to.id}: received + undeliverable = sent`,
            );
            if (to === from) continue;
            const sentA = at(from.sent, "a", to.id);
            const gotA = at(to.received, "a", from.id);
            alertsSent += sentA;
            delivered += gotA;
            assert.ok(sentA > 0, `peer ${from.id} sent to ${to.id}`);
            assert.equal(
              gotA + at(from.undeliverable, "a", to.id),
              sentA,
              `alerts ${from.id} → ${to.id}: received + undeliverable = sent`,
            );
          }
          const hubGotB = hubGot.get(from.id) ?? 0;
          delivered += hubGotB;
          assert.equal(hubGotB + at(from.undeliverable, "b", 0), broadcasts, `broadcasts ${from.id} → hub`);
        }
        assert.equal(hubDisorder, 0);
        if (zeroDrops) assert.equal(undeliverable, 0, "flow control kept every queue at the hub under its limit");
        if (undeliverable === 0) assert.deepEqual(hubStats.dropped, {}, "no limit was hit, so nothing was dropped");
        else {assert.deepEqual(
            hubStats.dropped,
            { queue_full: undeliverable },
            "each refusal was reported to its sender",
          );}
        assert.equal(hubStats.inFlightRequests, 0);
        assert.ok(alertsSent > 10_000, `only ${alertsSent} alerts were sent`);

        const sendMs = Math.max(...loads.map((l) => l.ms));
        const byRuntime = (rt: string) =>
          loads.filter((_, i) => peers[i].runtime === rt).reduce((sum, l) => sum + l.messages, 0);
        console.log(
          `load (${currentRuntime} hub, 8 deno + 8 bun peers, ${label}, ${SECONDS} s): startup ${
            Math.round(startupMs)
          } ms; ` +
            `sent ${alertsSent} alerts + ${broadcastsSent} broadcasts (deno peers ${byRuntime("deno")}, bun peers ${
              byRuntime("bun")
            }); delivered ${delivered} = ${Math.round(delivered / (sendMs / 1000))}/s; ` +
            `undeliverable ${undeliverable}, lost 0; QueueFullError waits ${
              loads.reduce((sum, l) => sum + l.queueFull, 0)
            }; hub frames in ${hubStats.framesIn} out ${hubStats.framesOut}, dropped ${
              JSON.stringify(hubStats.dropped)
            }`,
        );
      });
    },
  );
}
