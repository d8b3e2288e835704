/**
 * Many deadlines behind one timer: a min-heap of (deadline, id), with a
 * single `setTimeout` armed for the earliest. Requests add and settle at
 * high rates, and a timer per request cost more than the request itself.
 * Cancelled deadlines are dropped lazily; the heap is rebuilt when more than
 * half of it is stale, so it stays within twice the live count.
 */
/** Longest delay setTimeout takes without overflowing. */
const MAX_TIMEOUT_MS = 0x7fffffff;

export class DeadlineTimer {
  readonly #onExpire: (id: number) => void;
  #deadlines: number[] = [];
  #ids: number[] = [];
  readonly #live = new Map<number, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedFor = Infinity;

  /** @param onExpire Called with each id whose deadline passed. */
  constructor(onExpire: (id: number) => void) {
    this.#onExpire = onExpire;
  }

  /** Calls `onExpire(id)` once `ms` milliseconds from now have passed, unless cancelled. */
  add(id: number, ms: number): void {
    const deadline = Date.now() + ms;
    this.#live.set(id, deadline);
    this.#push(deadline, id);
    if (deadline < this.#armedFor) this.#arm(deadline);
  }

  /** Forgets the deadline of `id`. */
  cancel(id: number): void {
    this.#live.delete(id);
    // The timer stays armed when nothing is left: sequential requests would
    // otherwise pay a setTimeout and a clearTimeout each. It fires once,
    // finds nothing due, and is not re-armed; clear() stops it at once.
    if (this.#ids.length > 64 && this.#ids.length > 2 * this.#live.size) this.#rebuild();
  }

  /** Entries in the heap, live and not yet dropped cancelled ones: at most twice the live count past 64. */
  get heapSize(): number {
    return this.#ids.length;
  }

  /** Forgets every deadline, so no timer is left running. */
  clear(): void {
    this.#live.clear();
    this.#disarm();
  }

  #arm(deadline: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = deadline;
    // setTimeout overflows past 2^31-1 ms (and fires at once): arm for at most
    // that long; #fire re-arms for whatever is not due yet.
    this.#timer = setTimeout(() => this.#fire(), Math.min(MAX_TIMEOUT_MS, Math.max(0, deadline - Date.now())));
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
    this.#deadlines = [];
    this.#ids = [];
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = Date.now();
    const expired: number[] = [];
    while (this.#ids.length > 0 && this.#deadlines[0] <= now) {
      const id = this.#ids[0];
      const deadline = this.#deadlines[0];
      this.#pop();
      if (this.#live.get(id) === deadline) {
        this.#live.delete(id);
        expired.push(id);
      }
    }
    // Skip stale entries on top, then arm for the earliest live one.
    while (this.#ids.length > 0 && this.#live.get(this.#ids[0]) !== this.#deadlines[0]) this.#pop();
    if (this.#ids.length > 0) this.#arm(this.#deadlines[0]);
    for (const id of expired) this.#onExpire(id);
  }

  #rebuild(): void {
    this.#deadlines = [];
    this.#ids = [];
    for (const [id, deadline] of this.#live) this.#push(deadline, id);
  }

  #push(deadline: number, id: number): void {
    const d = this.#deadlines;
    const ids = this.#ids;
    let i = d.length;
    d.push(deadline);
    ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (d[parent] <= deadline) break;
      d[i] = d[parent];
      ids[i] = ids[parent];
      i = parent;
    }
    d[i] = deadline;
    ids[i] = id;
  }

  #pop(): void {
    const d = this.#deadlines;
    const ids = this.#ids;
    const lastDeadline = d.pop()!;
    const lastId = ids.pop()!;
    if (d.length === 0) return;
    let i = 0;
    const n = d.length;
    while (true) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const child = left + 1 < n && d[left + 1] < d[left] ? left + 1 : left;
      if (d[child] >= lastDeadline) break;
      d[i] = d[child];
      ids[i] = ids[child];
      i = child;
    }
    d[i] = lastDeadline;
    ids[i] = lastId;
  }
}
