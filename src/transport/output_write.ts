/**
 * Writing to stdout or stderr without holding up the process, on either
 * runtime. A Deno process's `process.stdout.write` (and `stderr`'s) is
 * synchronous: while a pipe is full (its reader stopped reading), the whole
 * process waits, a hub and all its peers with it. Bun's buffer in memory
 * without bound.
 *
 * @module
 */
import { write } from "node:fs";
import { runtime } from "./runtime.ts";

/** How long a write to a full pipe waits before it tries again (Bun). */
const FULL_PIPE_RETRY_MS = 20;

interface DenoOutput {
  Deno: Record<"stdout" | "stderr", { write(bytes: Uint8Array): Promise<number> }>;
}

/**
 * Writes `bytes`, or the first part of them, to stdout (`fd` 1) or stderr
 * (2), in the background: resolves with how many were written (0 when a
 * pipe stayed full for a moment), rejects if the stream is gone (`EPIPE`).
 * One write at a time per stream: the caller waits for each before the next.
 *
 * @example
 * ```ts
 * let bytes = new TextEncoder().encode("hello\n");
 * while (bytes.byteLength > 0) bytes = bytes.subarray(await writeOutput(1, bytes));
 * ```
 * @internal
 */
export function writeOutput(fd: 1 | 2, bytes: Uint8Array): Promise<number> {
  if (runtime === "deno") {
    return (globalThis as unknown as DenoOutput).Deno[fd === 1 ? "stdout" : "stderr"].write(bytes);
  }
  return new Promise((resolve, reject) =>
    write(fd, bytes, (err, written) => {
      // Bun's stdio does not block: a full pipe refuses the write. Nothing tells when it has room, so look again later.
      if ((err as { code?: string } | null)?.code === "EAGAIN") setTimeout(() => resolve(0), FULL_PIPE_RETRY_MS);
      else if (err) reject(err);
      else resolve(written);
    })
  );
}
