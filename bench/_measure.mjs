// Measurement loops shared by every client of bench/compare.ts, on Deno, Bun
// and Node alike: plain JavaScript so the Node libraries' clients can use it.
// Each child prints one JSON object per line on stdout; compare.ts reads them.
import process from "node:process";

/**
 * @typedef {object} LatencySpec
 * @property {number[]} sizes Payload bytes, one measurement each.
 * @property {number} warmupIterations Round trips before measuring, at most.
 * @property {number} warmupMs Milliseconds of warm-up, at most.
 * @property {number} runs Measured runs per size.
 * @property {number} iterations Round trips per run, at most.
 * @property {number} runMs Milliseconds per run, at most.
 */

/**
 * @typedef {object} RunSummary
 * @property {number} n Round trips measured.
 * @property {number} median Median round trip, µs.
 * @property {number} p99 99th percentile round trip, µs.
 */

/**
 * @typedef {object} ThroughputRun
 * @property {number} count Messages (or deliveries, or requests) completed.
 * @property {number} seconds Wall time they took.
 */

/**
 * The value after `--<name>` on the command line, or `fallback`.
 *
 * @param {string} name
 * @param {string} fallback
 * @returns {string}
 */
export function argValue(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : fallback;
}

/** Prints one result line for compare.ts. @param {Record<string, unknown>} message */
export function report(message) {
  console.log(JSON.stringify(message));
}

/** The `q` quantile of `sorted` (ascending), nearest rank. @param {number[]} sorted @param {number} q */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** The median of `values`. @param {number[]} values */
export function median(values) {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

/**
 * Measures sequential round trips, one outstanding, for each size: a warm-up,
 * then `runs` runs each bounded by count and by time.
 *
 * @param {(payload: any) => Promise<unknown>} roundTrip Sends `payload` and resolves on its echo.
 * @param {(bytes: number) => any} makePayload Builds the payload of a size, as the library sends it.
 * @param {LatencySpec} spec Sizes, counts and time bounds.
 * @returns {Promise<Array<{ bytes: number; runs: RunSummary[] }>>}
 */
export async function measureLatency(roundTrip, makePayload, spec) {
  const results = [];
  for (const bytes of spec.sizes) {
    const payload = makePayload(bytes);
    const warmStart = performance.now();
    for (let i = 0; i < spec.warmupIterations && performance.now() - warmStart < spec.warmupMs; i++) {
      await roundTrip(payload);
    }
    const runs = [];
    for (let r = 0; r < spec.runs; r++) {
      const samples = [];
      const start = performance.now();
      while (samples.length < spec.iterations && performance.now() - start < spec.runMs) {
        const t = performance.now();
        await roundTrip(payload);
        samples.push((performance.now() - t) * 1000);
      }
      samples.sort((a, b) => a - b);
      runs.push({ n: samples.length, median: quantile(samples, 0.5), p99: quantile(samples, 0.99) });
    }
    results.push({ bytes, runs });
  }
  return results;
}

/**
 * Runs `round` once to warm up, then `runs` times, and returns the measured runs.
 *
 * @param {() => Promise<ThroughputRun>} round One bounded measurement.
 * @param {number} runs Measured runs.
 * @returns {Promise<ThroughputRun[]>}
 */
export async function measureThroughput(round, runs) {
  await round();
  const out = [];
  for (let r = 0; r < runs; r++) out.push(await round());
  return out;
}

/**
 * Rejects after `ms` unless `promise` settles first.
 *
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} what Named in the error.
 * @returns {Promise<T>}
 */
export function withTimeout(promise, ms, what) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * CPU time (user + system, all threads) process `pid` has used so far, in µs,
 * from `/proc/<pid>/stat` (Linux; clock ticks of 10 ms on this machine, so a
 * run should use a second of CPU or more). Undefined where there is no /proc.
 *
 * @param {number} pid
 * @returns {Promise<number | undefined>}
 */
export async function cpuMicros(pid) {
  try {
    const { readFileSync } = await import("node:fs");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** `getconf CLK_TCK`: 100 on every Linux this runs on (the kernel's USER_HZ). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU per round trip, of this process and of the server `serverPid`, in two
 * windows of `spec.count` sequential round trips, both processes' CPU read
 * from /proc before and after each:
 *
 * - `first`: right after `spec.warmup` round trips, while the JIT is still
 *   compiling the hot path (its compiler threads count: they are the
 *   process's CPU too);
 * - `steady`: after `spec.settle` round trips in all, once it has stopped.
 *
 * @param {(payload: any) => Promise<unknown>} roundTrip Sends `payload` and resolves on its echo.
 * @param {any} payload What to send.
 * @param {{ warmup: number; count: number; settle: number; serverPid: number }} spec Counts and the server's pid.
 * @returns {Promise<{ first: CpuWindow; steady: CpuWindow }>} µs of CPU per round trip in each window.
 */
export async function measureCpu(roundTrip, payload, spec) {
  for (let i = 0; i < spec.warmup; i++) await roundTrip(payload);
  const first = await cpuWindow(roundTrip, payload, spec);
  for (let i = spec.warmup + spec.count; i < spec.settle; i++) await roundTrip(payload);
  const steady = await cpuWindow(roundTrip, payload, spec);
  return { first, steady };
}

/**
 * @typedef {{ n: number; seconds: number; client: number; server: number }} CpuWindow
 * µs of CPU per round trip of this process (`client`) and the server, over `n` round trips.
 */

/**
 * @param {(payload: any) => Promise<unknown>} roundTrip
 * @param {any} payload
 * @param {{ count: number; serverPid: number }} spec
 * @returns {Promise<CpuWindow>}
 */
async function cpuWindow(roundTrip, payload, spec) {
  const client0 = await cpuMicros(process.pid);
  const server0 = await cpuMicros(spec.serverPid);
  const start = performance.now();
  for (let i = 0; i < spec.count; i++) await roundTrip(payload);
  const seconds = (performance.now() - start) / 1000;
  const client1 = await cpuMicros(process.pid);
  const server1 = await cpuMicros(spec.serverPid);
  return {
    n: spec.count,
    seconds,
    client: (client1 - client0) / spec.count,
    server: (server1 - server0) / spec.count,
  };
}

/** Peak resident set size of this process in bytes (Linux VmHWM), or the current RSS elsewhere. */
export async function maxRssBytes() {
  try {
    const { readFileSync } = await import("node:fs");
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // Not Linux: fall through to the current RSS.
  }
  const { memoryUsage } = await import("node:process");
  return memoryUsage().rss;
}

/**
 * This process's memory once its garbage is gone: a full GC (`gc()`, which
 * Deno exposes with `--v8-flags=--expose-gc`, or `Bun.gc(true)`), 300 ms of
 * settling, another GC, then RSS (`VmRSS` of /proc/self/status) and the JS
 * heap used plus external (ArrayBuffer) memory. What hub_scale.ts reads from
 * a hub and from a bare server before and after the peers connect.
 *
 * @returns {Promise<{ rss: number; heap: number }>} Bytes.
 */
export async function settledUsage() {
  const collect = globalThis.gc ?? (() => globalThis.Bun?.gc(true));
  collect();
  await new Promise((resolve) => setTimeout(resolve, 300));
  collect();
  const { memoryUsage } = await import("node:process");
  const { heapUsed, external } = memoryUsage();
  return { rss: await rssBytes(), heap: heapUsed + external };
}

/**
 * The resident set size of process `pid`, this one by default: `VmRSS` of
 * /proc/<pid>/status (Linux).
 *
 * @param {number | "self"} pid
 * @returns {Promise<number>} Bytes.
 */
export async function rssBytes(pid = "self") {
  const { readFileSync } = await import("node:fs");
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
}

/**
 * The `hold` role of raw_deno.ts and raw_bun.ts: on each line on stdin,
 * reports `{ ev: "usage", held, rss, heap }` (`settledUsage`), where `held()`
 * counts the connections the server holds; exits when stdin closes.
 *
 * @param {() => number} held
 */
export function reportUsageOnRequest(held) {
  process.stdin.on("data", async () => report({ ev: "usage", held: held(), ...await settledUsage() }));
  process.stdin.on("end", () => process.exit(0));
}
