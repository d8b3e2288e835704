/** How far past the last slot an id may go and still get a slot: ids come from the lowest free, so they stay dense. */
const SLOT_REACH = 1024;

/**
 * A table keyed by peer id, for a peer's view of the bus. Hubs hand out the
 * lowest free ids, so most entries live in an array slot, which costs a
 * store where a `Map` hashes and grows: 1 000 peers in one process joining
 * one after another make a million entries in their views, and `Map.set`
 * was the client's largest cost (issue 13). An id far past the others (a
 * foreign hub's numbering) goes to a `Map`, so the array never grows by
 * more than {@linkcode SLOT_REACH} for one entry.
 */
export class IdTable<T> {
  #slots: Array<T | undefined> = [];
  #others: Map<number, T> | undefined;
  #size = 0;

  /** The number of entries. */
  get size(): number {
    return this.#size;
  }

  /** The entry of `id`, if any. */
  get(id: number): T | undefined {
    return this.#slots[id] ?? this.#others?.get(id);
  }

  /** Whether `id` has an entry. */
  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  /** Sets the entry of `id`. */
  set(id: number, value: T): void {
    const slots = this.#slots;
    if (!Number.isInteger(id) || id < 0 || id >= slots.length + SLOT_REACH) {
      const others = this.#others ??= new Map();
      if (!others.has(id) && slots[id] === undefined) this.#size++;
      others.set(id, value);
      return;
    }
    // Filled up to `id` first: an array written past its end with holes turns sparse, and slow.
    while (slots.length < id) slots.push(undefined);
    if (this.#others?.delete(id)) this.#size--;
    if (slots[id] === undefined) this.#size++;
    slots[id] = value;
  }

  /** Removes the entry of `id`; whether there was one. */
  delete(id: number): boolean {
    if (this.#others?.delete(id)) {
      this.#size--;
      return true;
    }
    if (this.#slots[id] === undefined) return false;
    this.#slots[id] = undefined;
    this.#size--;
    return true;
  }

  /** Removes every entry. */
  clear(): void {
    this.#slots = [];
    this.#others = undefined;
    this.#size = 0;
  }

  /** The ids with an entry: those in slots in id order, then the others. */
  ids(): number[] {
    const ids: number[] = [];
    this.#slots.forEach((value, id) => value !== undefined && ids.push(id));
    if (this.#others) ids.push(...this.#others.keys());
    return ids;
  }

  /** The entries, in the order of {@linkcode ids}. */
  values(): T[] {
    const values: T[] = [];
    for (const value of this.#slots) if (value !== undefined) values.push(value);
    if (this.#others) values.push(...this.#others.values());
    return values;
  }
}
