/**
 * The runtime this process runs on, detected once, and its process id. Loads
 * no runtime adapter: the bus may read these, while only the entry points
 * (`connect()`, `serve()`, `channel()`) load the adapters.
 *
 * @module
 */
import { UnsupportedRuntimeError } from "../errors.ts";

/** The JavaScript runtimes ipcbus runs on. */
export type RuntimeName = "deno" | "bun";

function detectRuntime(): RuntimeName | undefined {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  return undefined;
}

/** The runtime this process runs on, detected once at load. */
export const runtime: RuntimeName | undefined = detectRuntime();

/** This process's id (0 where the runtime has no `process` global). */
export const processId: number = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;

/** The error for a runtime other than Deno or Bun; `what` says what could not be done. */
export function unsupportedRuntime(what: string): UnsupportedRuntimeError {
  const name = (globalThis as { process?: { release?: { name?: string } } }).process?.release?.name ?? "this runtime";
  return new UnsupportedRuntimeError(`${what}ipcbus runs on Deno or Bun, not on ${name}`);
}
