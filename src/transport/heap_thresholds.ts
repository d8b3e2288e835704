/**
 * Large messages on Deno on Linux: glibc's `malloc` serves every block over
 * 128 KiB with an `mmap` of its own and gives freed heap back to the kernel
 * once 128 KiB of it is free, so each fresh large `ArrayBuffer` (every large
 * message handed to a user is one) is page-faulted in and zeroed again, and
 * page faults are dear on a virtual machine. glibc raises both thresholds by
 * itself when a program frees an `mmap`ed block of up to 32 MiB (its dynamic
 * mmap threshold, mallopt(3)): freeing one of 30 MiB, never touched, makes
 * blocks under 30 MiB come from the heap and keeps up to 60 MiB of freed heap
 * for reuse, as `GLIBC_TUNABLES` would. A process that sets either threshold
 * with `GLIBC_TUNABLES` turns the adjustment off, and this with it.
 *
 * @module
 */

/**
 * A read this large into a frame's own buffer makes the process raise the
 * thresholds: the frame is at least this large, and its buffers, freed by
 * the garbage collector a few at a time, soon pass the 128 KiB that glibc
 * trims at.
 */
export const LARGE_READ_BYTES = 32 * 1024;
/** Under glibc's ceiling for the dynamic threshold (32 MiB on 64-bit), counting the block's header. */
const BLOCK_BYTES = 30 * 1024 * 1024;
let raised = false;

/**
 * Raises glibc's mmap and trim thresholds, once per process (see the module
 * doc); elsewhere it allocates and frees 30 MiB of untouched memory once.
 *
 * @example
 * ```ts
 * if (readInto.byteLength >= LARGE_READ_BYTES) raiseHeapThresholds();
 * ```
 * @internal
 */
export function raiseHeapThresholds(): void {
  if (raised) return;
  raised = true;
  // transfer(0) frees the block at once; V8 asks calloc for it, which mmaps it untouched.
  new ArrayBuffer(BLOCK_BYTES).transfer(0);
}
