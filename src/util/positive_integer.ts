/**
 * Checks an option that must be a positive safe integer.
 *
 * @param name The option's name, for the error.
 * @param value Its value.
 * @returns `value`.
 * @throws {RangeError} when `value` is not a positive safe integer.
 *
 * @example
 * ```ts
 * import { positiveInteger } from "./positive_integer.ts";
 * const limit = positiveInteger("maxQueueMessages", 1024);
 * ```
 */
export function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`Invalid option ${name}: expected a positive integer, got ${value}`);
  }
  return value;
}
