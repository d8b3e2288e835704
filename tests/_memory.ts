/**
 * What a leak keeps, measured so that the garbage collector's timing does not
 * show up as one: the bytes still live in this process after a full
 * collection. Resident memory (RSS) is the wrong reading for a leak bound on a
 * loaded machine: it rises with whatever garbage the collector has not got to
 * yet (later under load, when its helper threads get less CPU) and stays at
 * its high water, since the allocator keeps freed pages.
 *
 * @module
 */
import process from "node:process";
import v8 from "node:v8";
import vm from "node:vm";

type Collect = () => void;
let collect: Collect | undefined;

/** A full, synchronous garbage collection of this process. */
function collector(): Collect {
  if (collect) return collect;
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) return collect = () => bun.gc(true);
  const exposed = (globalThis as { gc?: Collect }).gc;
  if (typeof exposed === "function") return collect = exposed;
  // Deno without --expose-gc: V8 takes the flag at run time, and a new context gets the function.
  v8.setFlagsFromString("--expose-gc");
  return collect = vm.runInNewContext("gc") as Collect;
}

/**
 * Bytes of JavaScript objects and array buffers live in this process after a
 * full collection. Collects twice, with a macrotask turn between: V8 frees
 * the backing store of an array buffer only in the collection after the one
 * that found it dead. Bun's `heapUsed` already counts array buffers
 * (`external`), V8's does not.
 */
export async function liveBytes(): Promise<number> {
  const gc = collector();
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return "Bun" in globalThis ? heapUsed : heapUsed + external;
}

/**
 * Takes {@linkcode liveBytes} every `everyMs` until `stop()`, which resolves
 * with the highest reading (one more taken then included): what the process
 * held at most while something ran, its garbage not counted.
 */
export function livePeak(everyMs: number): { stop(): Promise<number> } {
  let stopped = false;
  let peak = 0;
  const sampling = (async () => {
    for (let i = 0; i < 100_000 && !stopped; i++) {
      peak = Math.max(peak, await liveBytes());
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await sampling;
      return Math.max(peak, await liveBytes());
    },
  };
}
