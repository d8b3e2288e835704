/**
 * A small seeded PRNG for the fuzzers, and the knobs that size a run: a
 * fixed seed and a bounded count in CI, more by environment variable.
 *
 * @module
 */
import process from "node:process";

/** mulberry32: 32 bits of state, fast, and the same sequence on every runtime. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** Reads a positive integer from the environment, or `fallback`. */
function envInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`Invalid ${name}: expected a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** Seed of every fuzzer: `IPCBUS_FUZZ_SEED`, default fixed so CI runs are repeatable. */
export const fuzzSeed: number = envInteger("IPCBUS_FUZZ_SEED", 0x1bc0b05);

/**
 * How many inputs a fuzzer tries: `IPCBUS_FUZZ_COUNT` for a long run, else
 * `ciCount`. `scale` lets one knob size fuzzers whose inputs differ in cost.
 */
export function fuzzCount(ciCount: number, scale = 1): number {
  const asked = envInteger("IPCBUS_FUZZ_COUNT", 0);
  return asked > 0 ? Math.max(1, Math.round(asked * scale)) : ciCount;
}
