import { TimeoutError } from "../errors.ts";

/**
 * Settles like `promise`, or rejects after `ms` milliseconds with
 * `onTimeout()` (a `TimeoutError` built from a string, or any error),
 * whichever comes first; the timer is cleared either way. The one place of
 * the `Promise.race` + `setTimeout` pattern (as denoland/std `async/deadline.ts`).
 *
 * @param promise What to wait for.
 * @param ms Milliseconds to wait at most.
 * @param onTimeout The error's message, or the error itself.
 * @returns What `promise` resolves to.
 * @throws What `promise` rejects with, or the timeout's error.
 *
 * @example Waiting at most a second
 * ```ts
 * import { withTimeout } from "./with_timeout.ts";
 * const value = await withTimeout(Promise.resolve(1), 1000, () => "No value within 1000 ms");
 * ```
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => string | Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const reason = onTimeout();
      reject(typeof reason === "string" ? new TimeoutError(reason) : reason);
    }, ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * Resolves when `promise` settles or after `ms` milliseconds, whichever
 * comes first: a bounded wait whose outcome does not matter (draining a
 * queue before closing).
 *
 * @param promise What to wait for.
 * @param ms Milliseconds to wait at most.
 * @returns A promise that never rejects.
 *
 * @example Draining for at most a second
 * ```ts
 * import { waitAtMost } from "./with_timeout.ts";
 * await waitAtMost(new Promise((resolve) => setTimeout(resolve, 10)), 1000);
 * ```
 */
export function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  return withTimeout(promise, ms, () => "").then(() => {}, () => {});
}
