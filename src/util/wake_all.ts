/**
 * Calls every waiter in `waiters` and empties the list; waiters added while
 * they run stay for the next call. An empty list costs nothing: callers wake
 * on hot paths (every answer to sequential requests empties a table).
 *
 * @param waiters The resolvers of those waiting.
 *
 * @example
 * ```ts
 * import { wakeAll } from "./wake_all.ts";
 * const waiters: Array<() => void> = [];
 * const idle = new Promise<void>((resolve) => waiters.push(resolve));
 * wakeAll(waiters);
 * await idle;
 * ```
 */
export function wakeAll(waiters: Array<() => void>): void {
  if (waiters.length === 0) return;
  for (const wake of waiters.splice(0)) wake();
}
