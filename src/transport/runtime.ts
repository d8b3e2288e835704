/**
 * The runtime this process runs on, detected once, and its process id. Loads
 * no runtime adapter: the bus may read these, while only the entry points
 * (`connect()`, `serve()`, `channel()`) load the adapters. At load it also
 * sets how small payloads are copied for users on this runtime's engine
 * (`setSmallCopies` in `util/pooled_copy.ts`).
 *
 * @module
 */
import { UnsupportedRuntimeError } from "../errors.ts";
import { setSmallCopies } from "../util/pooled_copy.ts";

/** The JavaScript runtimes ipcbus runs on. */
export type RuntimeName = "deno" | "bun";

function detectRuntime(): RuntimeName | undefined {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  return undefined;
}

/** The runtime this process runs on, detected once at load. */
export const runtime: RuntimeName | undefined = detectRuntime();

// The cheaper way to copy a small payload for a user depends on the engine: see setSmallCopies.
if (runtime === "bun") setSmallCopies("fresh");

/** This process's id (0 where the runtime has no `process` global). */
export const processId: number = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;

/** The error for a runtime other than Deno or Bun; `what` says what could not be done. */
export function unsupportedRuntime(what: string): UnsupportedRuntimeError {
  const name = (globalThis as { process?: { release?: { name?: string } } }).process?.release?.name ?? "this runtime";
  return new UnsupportedRuntimeError(`${what}ipcbus runs on Deno or Bun, not on ${name}`);
}
