/**
 * Telling when the process has run out of file descriptors (`EMFILE`), on
 * either runtime: Deno's `accept()` throws it, Bun's accept loop only
 * retries in silence, so a probe opens one descriptor to find out.
 *
 * @module
 */
import { closeSync, openSync } from "node:fs";

/** Whether `err` says the process (`EMFILE`) or the system (`ENFILE`) has no file descriptor left. */
export function isOutOfFiles(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "EMFILE" || code === "ENFILE";
}

/**
 * Whether the process can open one more file descriptor right now: opens
 * `/dev/null` and closes it at once.
 */
export function canOpenFile(): boolean {
  try {
    closeSync(openSync("/dev/null", "r"));
    return true;
  } catch (err) {
    // Only running out counts; a sandbox that forbids the probe says nothing about descriptors.
    return !isOutOfFiles(err);
  }
}
