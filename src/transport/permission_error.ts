/**
 * Deno's refusals for lack of a permission flag, turned into one typed
 * error wherever ipcbus touches a file, a socket or the environment.
 *
 * @module
 */
import { PermissionError } from "../errors.ts";

/**
 * The {@linkcode PermissionError} for `cause` if it is Deno refusing an
 * operation for lack of a permission flag (`NotCapable`, whose message reads
 * `Requires net access to "unix:/tmp/a.sock", run again with the --allow-net
 * flag`), naming the flag with its value; `undefined` for any other error.
 * Bun has no permission flags, so nothing there matches.
 *
 * @param cause The error the runtime threw.
 * @param what What failed, such as `Cannot listen on /tmp/a.sock`.
 * @returns The typed error, with `cause` kept, or `undefined`.
 *
 * @example
 * ```ts
 * import { asPermissionError } from "./permission_error.ts";
 * const denied = Object.assign(new Error('Requires net access to "unix:/tmp/a.sock", run again with the --allow-net flag'), {
 *   name: "NotCapable",
 * });
 * console.log(asPermissionError(denied, "Cannot listen on /tmp/a.sock")?.message);
 * // Cannot listen on /tmp/a.sock: run Deno with --allow-net=unix:/tmp/a.sock (Requires net access …)
 * ```
 */
export function asPermissionError(cause: unknown, what: string): PermissionError | undefined {
  if (!(cause instanceof Error) || cause.name !== "NotCapable") return undefined;
  if (cause instanceof PermissionError) return cause;
  const access = /Requires (\w+) access to "([^"]*)"/.exec(cause.message);
  const flag = access
    ? `--allow-${access[1]}=${access[2]}`
    : /--allow-[\w-]+/.exec(cause.message)?.[0] ?? "the missing --allow-* flag";
  return new PermissionError(`${what}: run Deno with ${flag} (${cause.message})`, { cause });
}
