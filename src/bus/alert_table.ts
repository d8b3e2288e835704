import { type AlertPattern, compileAlertPattern } from "./alert_pattern.ts";

/** Names whose pattern lookups are remembered, at most; past it the memory starts over. */
const CACHE_LIMIT = 1024;

/**
 * Values registered under alert names and name patterns (see
 * `alert_pattern.ts`): the alert handlers of a peer, or its subscriptions.
 * An exact name is one map lookup; patterns are compiled once, kept most
 * specific first, and the answer for a name is remembered until the table
 * changes, so a steady stream of alerts costs a map lookup each.
 */
export class AlertTable<T> {
  readonly #exact = new Map<string, T>();
  /** Most specific first (see {@linkcode AlertPattern.rank}). */
  #patterns: Array<{ pattern: AlertPattern; value: T }> = [];
  readonly #best = new Map<string, T | undefined>();
  readonly #all = new Map<string, T[]>();

  /** Number of names and patterns registered. */
  get size(): number {
    return this.#exact.size + this.#patterns.length;
  }

  /**
   * The value registered under `name` (a name or a pattern, as given).
   *
   * @throws {TypeError} for an invalid pattern.
   */
  get(name: string): T | undefined {
    if (compileAlertPattern(name) === undefined) return this.#exact.get(name);
    return this.#patterns.find((p) => p.pattern.text === name)?.value;
  }

  /**
   * Registers `value` under `name`, an exact name or a pattern, replacing any.
   *
   * @throws {TypeError} for an invalid pattern.
   */
  set(name: string, value: T): void {
    const pattern = compileAlertPattern(name);
    this.#forget();
    if (pattern === undefined) {
      this.#exact.set(name, value);
      return;
    }
    const at = this.#patterns.findIndex((p) => p.pattern.text === name);
    if (at !== -1) {
      this.#patterns[at].value = value;
      return;
    }
    this.#patterns.push({ pattern, value });
    // Stable: among equal ranks (never both matching one name) the order of registration is kept.
    this.#patterns.sort((a, b) => a.pattern.rank < b.pattern.rank ? 1 : a.pattern.rank > b.pattern.rank ? -1 : 0);
  }

  /** Removes what is registered under `name`; returns whether there was something. */
  delete(name: string): boolean {
    this.#forget();
    if (this.#exact.delete(name)) return true;
    const before = this.#patterns.length;
    this.#patterns = this.#patterns.filter((p) => p.pattern.text !== name);
    return this.#patterns.length !== before;
  }

  /** Every registered value. */
  values(): T[] {
    return [...this.#exact.values(), ...this.#patterns.map((p) => p.value)];
  }

  /** Removes everything. */
  clear(): void {
    this.#forget();
    this.#exact.clear();
    this.#patterns = [];
  }

  /**
   * The value for alert `name`: its exact entry, else the most specific
   * matching pattern (literal tokens beat `*`, which beats `>` and `"*"`).
   */
  match(name: string): T | undefined {
    const exact = this.#exact.get(name);
    if (exact !== undefined || this.#patterns.length === 0) return exact;
    if (this.#best.has(name)) return this.#best.get(name);
    const found = this.#patterns.find((p) => p.pattern.matches(name))?.value;
    this.#remember(this.#best, name, found);
    return found;
  }

  /** Every value whose name or pattern matches alert `name`, the exact entry first. */
  matchAll(name: string): readonly T[] {
    let all = this.#all.get(name);
    if (all) return all;
    const exact = this.#exact.get(name);
    if (exact === undefined && this.#patterns.length === 0) return NONE;
    all = this.#patterns.filter((p) => p.pattern.matches(name)).map((p) => p.value);
    if (exact !== undefined) all.unshift(exact);
    this.#remember(this.#all, name, all);
    return all;
  }

  #remember<V>(cache: Map<string, V>, name: string, value: V): void {
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(name, value);
  }

  #forget(): void {
    this.#best.clear();
    this.#all.clear();
  }
}

const NONE: readonly never[] = Object.freeze([]);
