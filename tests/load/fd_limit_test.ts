/**
 * A hub that runs out of file descriptors (`EMFILE`): a hub in its own
 * process whose descriptor limit is lowered while it runs (`prlimit --pid`),
 * to a few above what it holds. Peers connect until the hub can accept no
 * more; then the hub must keep serving the peers it has, refuse new ones
 * with an `error` event, and accept again once descriptors are freed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { connect, type Peer } from "../../mod.ts";
import { currentRuntime, nextEvent, within } from "../_helpers.ts";
import { fdCountOf, LOAD_TEST, loadScenario, WAIT } from "./_load_helpers.ts";

/** Connections the hub may still accept once its limit is lowered. */
const SPARE_FDS = 4;
/** How long a peer waits for the hub's welcome: a connection the hub cannot accept waits in its backlog. */
const CONNECT_MS = 2_000;

/** Sets the soft and hard limit of open files of the running process `pid`. */
function limitFiles(pid: number, limit: number): void {
  const done = spawnSync("prlimit", ["--pid", String(pid), `--nofile=${limit}:${limit}`], { encoding: "utf8" });
  if (done.status !== 0) throw new Error(`prlimit failed (${done.status}): ${done.stderr}`);
}

test(
  "A hub out of file descriptors keeps serving its peers, refuses new ones with an error event, and accepts again once descriptors are freed",
  LOAD_TEST,
  async () => {
    await loadScenario(async (s) => {
      const hub = await s.spawnHub(currentRuntime);
      const control = await s.connect({ name: "control" });
      const partner = await s.connect({ name: "partner" });
      // Deno's runtime opens descriptors of its own in its first seconds (it panics in ext/signals when it
      // finds none: seen with Deno 2.9.5), which no hub code can help: lower the limit after that.
      await within(
        WAIT,
        "the hub to be up for 3 s",
        (async () => {
          for (let i = 0; i < 100; i++) {
            const { uptimeMs } = await control.request("/ipcbus/stats", null, { timeout: WAIT }) as {
              uptimeMs: number;
            };
            if (uptimeMs >= 3000) return;
            await new Promise((resolve) => setTimeout(resolve, 3000 - uptimeMs));
          }
        })(),
      );
      const limit = fdCountOf(hub.pid) + SPARE_FDS;
      limitFiles(hub.pid, limit);

      const extra: Peer[] = [];
      s.onCleanup(async () => void await Promise.all(extra.map((p) => p.close())));
      let refused: unknown;
      for (let i = 0; i < SPARE_FDS + 8 && refused === undefined; i++) {
        try {
          extra.push(await connect({ path: s.path, timeout: CONNECT_MS }));
        } catch (err) {
          refused = err;
        }
      }
      const joinedFirst = extra.length;
      assert.ok(refused instanceof Error, `a connection past the limit of ${limit} files was refused`);
      const event = await hub.next("an error event of the hub", (e) => e.ev === "error");
      assert.equal(event.code, "too_many_open_files", `the hub's error event: ${JSON.stringify(event)}`);

      // The peers it has are served: a request to the hub, an alert between two of them.
      assert.deepEqual(await control.request("/ipcbus/echo", { n: 1 }, { timeout: WAIT }), { n: 1 });
      const alert = nextEvent<unknown>(WAIT, partner, "got");
      partner.on("ping", (data) => void partner.dispatchEvent(new CustomEvent("got", { detail: data })));
      control.send("partner", "ping", 7);
      assert.equal(await alert, 7);

      // Descriptors freed: new peers are accepted again (the hub retries accepting on its own).
      await Promise.all(extra.splice(0, 2).map((p) => p.close()));
      let joined: Peer | undefined;
      const failures: string[] = [];
      await within(
        WAIT,
        "a peer to join once descriptors were freed",
        (async () => {
          for (let attempt = 0; attempt < 10 && !joined; attempt++) {
            try {
              joined = await connect({ path: s.path, timeout: CONNECT_MS });
            } catch (err) {
              failures.push((err as Error).name);
            }
          }
        })(),
      );
      assert.ok(joined, `no peer joined after 10 tries: ${failures}`);
      extra.push(joined);
      assert.deepEqual(await joined.request("/ipcbus/echo", "back", { timeout: WAIT }), "back");
      console.log(
        `fd limit (${currentRuntime} hub): limit ${limit} files; refused after ${joinedFirst} more peers, ` +
          `refused with ${(refused as Error).name}; event ${event.code}: ${event.message}; ` +
          `joined again after ${failures.length} failed tries`,
      );
    });
  },
);
