import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QueueFullError } from "../errors.ts";
import { withTimeout } from "../util/with_timeout.ts";
import { serve } from "../socket/serve.ts";
import type { Hub } from "../bus/hub.ts";
import type { Peer } from "../bus/peer.ts";
import { runtime } from "../transport/runtime.ts";
import type { CliArgs } from "./cli_args.ts";
import { expectArguments } from "./command_data.ts";
import { ExitCode } from "./exit_code.ts";
import { type BusAddress, busAddress, describeAddress, joinBus } from "./join_bus.ts";
import { toJson } from "./json_value.ts";
import { print, printError, stderrIsTty, writeError } from "./terminal.ts";

const DEFAULTS = { requests: 2000, alerts: 20_000, size: 64 } as const;
const BENCH_ALERT = "ipcbus.bench";
/** Alerts received or reported undeliverable must all be in within this, or the bench fails. */
const ALERT_WAIT_MS = 60_000;
/** Above this many frames waiting in the peer, wait for them to be written before sending more. */
const MAX_QUEUED = 4096;

/** What `bench --json` prints; times in ms. */
export interface BenchResult {
  runtime: string;
  hub: string;
  size: number;
  requests: { count: number; p50: number; p90: number; p99: number; max: number; mean: number; perSecond: number };
  alerts: { count: number; received: number; lost: number; ms: number; perSecond: number; bytesPerSecond: number };
}

/**
 * `ipcbus bench`: round-trip percentiles of `/ipcbus/echo` and the rate of
 * alerts a peer sends itself through the hub, against the hub at
 * `--path`/`--channel` or a fresh one in this process.
 *
 * @param args The parsed command line.
 * @returns The exit status.
 */
export async function benchCommand(args: CliArgs): Promise<number> {
  expectArguments("bench", args.positionals, []);
  const { options } = args;
  const address = busAddress(options, "bench", false);
  const requests = options.requests ?? DEFAULTS.requests;
  const alerts = options.alerts ?? DEFAULTS.alerts;
  const size = options.size ?? DEFAULTS.size;
  const local = address === undefined ? await startLocalHub() : undefined;
  const target: BusAddress = address ?? { path: local!.hub.path! };
  const progress = new Progress();
  try {
    const peer = await joinBus(target, options.name);
    try {
      const payload = new Uint8Array(size).fill(0x2a);
      const latency = await timeRequests(peer, requests, payload, progress);
      const throughput = await timeAlerts(peer, alerts, payload, progress);
      progress.done();
      const result: BenchResult = {
        runtime: runtime ?? "unknown",
        hub: local ? `in-process at ${local.hub.path}` : describeAddress(target),
        size,
        requests: latency,
        alerts: throughput,
      };
      for (const line of options.json ? [toJson(result)] : report(result)) print(line);
      return ExitCode.Ok;
    } finally {
      await peer.close();
    }
  } finally {
    progress.done();
    await local?.stop();
  }
}

async function startLocalHub(): Promise<{ hub: Hub; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "ipcbus-bench-"));
  try {
    const hub = await serve({ path: join(dir, "hub.sock") });
    return {
      hub,
      stop: async () => {
        await hub.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function timeRequests(
  peer: Peer,
  count: number,
  payload: Uint8Array,
  progress: Progress,
): Promise<BenchResult["requests"]> {
  const warmup = Math.min(100, count);
  progress.show(`bench: warming up (${warmup} requests)`);
  for (let i = 0; i < warmup; i++) await peer.request("/ipcbus/echo", payload);
  const times = new Float64Array(count);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await peer.request("/ipcbus/echo", payload);
    times[i] = performance.now() - t;
    if ((i & 63) === 0) progress.tick(`bench: requests ${i}/${count}`);
  }
  const elapsed = performance.now() - started;
  times.sort();
  return {
    count,
    p50: micros(percentile(times, 0.5)),
    p90: micros(percentile(times, 0.9)),
    p99: micros(percentile(times, 0.99)),
    max: micros(times[count - 1]),
    mean: micros(times.reduce((a, b) => a + b, 0) / count),
    perSecond: Math.round(count / (elapsed / 1000)),
  };
}

/** Milliseconds rounded to the microsecond: finer digits are noise. */
function micros(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

async function timeAlerts(
  peer: Peer,
  count: number,
  payload: Uint8Array,
  progress: Progress,
): Promise<BenchResult["alerts"]> {
  let received = 0;
  let lost = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const settle = () => {
    if (received + lost === count) finish();
  };
  peer.on(BENCH_ALERT, () => {
    received++;
    settle();
  });
  const onUndeliverable = () => {
    lost++;
    settle();
  };
  peer.addEventListener("undeliverable", onUndeliverable);
  progress.show(`bench: alerts 0/${count}`);
  const started = performance.now();
  let sent = 0;
  while (sent < count) {
    try {
      peer.send(peer.id, BENCH_ALERT, payload);
      sent++;
    } catch (err) {
      if (!(err instanceof QueueFullError)) throw err;
      await peer.flush();
      continue;
    }
    if ((sent & 1023) === 0) {
      progress.tick(`bench: alerts ${received}/${count}`);
      if (peer.stats().queuedMessages > MAX_QUEUED) await peer.flush();
      // Let the read loop count arrivals while sending.
      else await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  try {
    await withTimeout(
      finished,
      ALERT_WAIT_MS,
      () => `Bench: ${received} of ${count} alerts arrived within ${ALERT_WAIT_MS} ms`,
    );
  } finally {
    peer.off(BENCH_ALERT);
    peer.removeEventListener("undeliverable", onUndeliverable);
  }
  const ms = performance.now() - started;
  return {
    count,
    received,
    lost,
    ms: micros(ms),
    perSecond: Math.round(received / (ms / 1000)),
    bytesPerSecond: Math.round((received * payload.byteLength) / (ms / 1000)),
  };
}

function report(r: BenchResult): string[] {
  const ms = (v: number): [string, string] => [v.toFixed(3), "ms"];
  const rate = (v: number, unit: string): [string, string] => [Math.round(v).toLocaleString("en-US"), unit];
  const rows = (pairs: [string, [string, string]][]) =>
    pairs.map(([label, [value, unit]]) => `  ${label.padEnd(6)}${value.padStart(12)} ${unit}`.trimEnd());
  return [
    `ipcbus bench on ${r.runtime}, hub ${r.hub}`,
    `echo round trips: ${r.requests.count} requests of ${r.size} bytes, one at a time`,
    ...rows([
      ["p50", ms(r.requests.p50)],
      ["p90", ms(r.requests.p90)],
      ["p99", ms(r.requests.p99)],
      ["max", ms(r.requests.max)],
      ["rate", rate(r.requests.perSecond, "requests/s")],
    ]),
    `alerts to self: ${r.alerts.count} alerts of ${r.size} bytes`,
    ...rows([
      ["rate", rate(r.alerts.perSecond, "alerts/s")],
      ["data", [(r.alerts.bytesPerSecond / 1e6).toFixed(1), "MB/s"]],
      ["time", ms(r.alerts.ms)],
      ["lost", [String(r.alerts.lost), ""]],
    ]),
  ];
}

/**
 * The progress line on stderr: rewritten in place on a terminal, at most
 * every 100 ms; elsewhere one line per phase, so logs stay short.
 */
class Progress {
  readonly #tty = stderrIsTty();
  #last = 0;
  #shown = false;

  show(text: string): void {
    if (this.#tty) this.#write(text);
    else printError(text);
  }

  tick(text: string): void {
    if (!this.#tty) return;
    const now = performance.now();
    if (now - this.#last < 100) return;
    this.#last = now;
    this.#write(text);
  }

  done(): void {
    if (!this.#shown) return;
    this.#shown = false;
    // Erase the line so the report starts clean.
    writeError("\r\x1b[K");
  }

  #write(text: string): void {
    this.#shown = true;
    writeError(`\r\x1b[K${text}`);
  }
}
