import { setTimeout as setNodeTimeout } from "node:timers";

/**
 * The batches of small frames a {@linkcode FrameWriter} writes from, shared
 * by every connection of the process (a large frame's own buffer comes from
 * `codec/large_buffer_pool.ts`). A writer takes one when it has something to write and
 * gives it back once written, so an idle connection holds none (issue 13: a
 * hub's idle peer should cost at most 16 KiB; at 64 KiB each, two per
 * connection, a hub with 500 idle peers once held 64 MiB in them,
 * tests/load/soak_test.ts), while a burst reuses the batch the last one grew
 * (a fresh one costs its page faults, and an alert flood regrew one per read).
 *
 * A broadcast to N peers takes N batches at once, so the pool may hold up
 * to MAX_POOLED_BYTES; once nothing was taken for TRIM_AFTER_MS it is cut
 * back to KEEP_WHEN_IDLE_BYTES, so that a hub at rest does not keep what its
 * last burst needed.
 *
 * @module
 */

/** A batch starts this small and doubles while a burst fills it. */
export const INITIAL_BATCH_BYTES = 4 * 1024;
/** Batches up to this size go back to the pool once written; larger ones are let go. */
const MAX_POOLED_BATCH_BYTES = 1024 * 1024;
/** Bytes the pool keeps, at most, whatever the number of connections. */
const MAX_POOLED_BYTES = 4 * 1024 * 1024;
/** Grown batches (larger than INITIAL_BATCH_BYTES) kept, at most: those of the last bursts. */
const MAX_GROWN_BATCHES = 8;
/** Nothing taken for this long: the pool is cut back to KEEP_WHEN_IDLE_BYTES. */
const TRIM_AFTER_MS = 100;
const KEEP_WHEN_IDLE_BYTES = 256 * 1024;

/** Batches of INITIAL_BATCH_BYTES: taken and given back in O(1), however many connections. */
const initial: Uint8Array[] = [];
/** Grown batches, at most MAX_GROWN_BATCHES. */
const grown: Uint8Array[] = [];
let pooledBytes = 0;
let takenSinceTrim = false;
let trimTimer: { unref(): unknown } | undefined;

/**
 * The largest pooled batch if it holds `minBytes` (a burst's), else a new one
 * of `minBytes` rounded up to a power of two: a run of frames that each need
 * a little more than the last (welcomes on a growing bus) then reuses one
 * batch instead of making a fresh one each time (and paying its page faults).
 */
export function takeBatch(minBytes: number): Uint8Array {
  takenSinceTrim = true;
  if (grown.length > 0) {
    let largest = 0;
    for (let i = 1; i < grown.length; i++) if (grown[i].byteLength > grown[largest].byteLength) largest = i;
    const batch = grown[largest];
    if (batch.byteLength >= minBytes) {
      grown[largest] = grown[grown.length - 1];
      grown.pop();
      pooledBytes -= batch.byteLength;
      return batch;
    }
  }
  if (minBytes <= INITIAL_BATCH_BYTES && initial.length > 0) {
    pooledBytes -= INITIAL_BATCH_BYTES;
    return initial.pop()!;
  }
  return new Uint8Array(minBytes <= INITIAL_BATCH_BYTES ? INITIAL_BATCH_BYTES : 2 ** Math.ceil(Math.log2(minBytes)));
}

/** A batch written: kept for the next one if the pool has room. */
export function giveBack(batch: Uint8Array): void {
  const bytes = batch.byteLength;
  if (bytes > MAX_POOLED_BATCH_BYTES || pooledBytes + bytes > MAX_POOLED_BYTES) return;
  if (bytes === INITIAL_BATCH_BYTES) initial.push(batch);
  else if (grown.length < MAX_GROWN_BATCHES) grown.push(batch);
  else {
    // Keep the larger ones: they serve every smaller burst too.
    let smallest = 0;
    for (let i = 1; i < grown.length; i++) if (grown[i].byteLength < grown[smallest].byteLength) smallest = i;
    if (grown[smallest].byteLength >= bytes) return;
    pooledBytes -= grown[smallest].byteLength;
    grown[smallest] = batch;
  }
  pooledBytes += bytes;
  if (trimTimer === undefined && pooledBytes > KEEP_WHEN_IDLE_BYTES) {
    // Unref'd: a pool waiting to be trimmed keeps no process alive.
    trimTimer = setNodeTimeout(trim, TRIM_AFTER_MS);
    trimTimer.unref();
  }
}

/** Cuts the pool back to KEEP_WHEN_IDLE_BYTES once nothing was taken for TRIM_AFTER_MS. */
function trim(): void {
  trimTimer = undefined;
  if (takenSinceTrim) {
    takenSinceTrim = false;
    if (pooledBytes > KEEP_WHEN_IDLE_BYTES) {
      trimTimer = setNodeTimeout(trim, TRIM_AFTER_MS);
      trimTimer.unref();
    }
    return;
  }
  while (pooledBytes > KEEP_WHEN_IDLE_BYTES && grown.length > 0) pooledBytes -= grown.pop()!.byteLength;
  while (pooledBytes > KEEP_WHEN_IDLE_BYTES && initial.length > 0) {
    initial.pop();
    pooledBytes -= INITIAL_BATCH_BYTES;
  }
}

/** Bytes the batch pool holds now (for tests). */
export function pooledBatchBytes(): number {
  return pooledBytes;
}
