/**
 * Exact accounting of numbered deliveries, shared by the demo's workers
 * (examples/demo_worker.ts) and its test (tests/delivery_ledger_test.ts):
 * every sender numbers its messages to one receiver 1, 2, 3, …, the receiver
 * records each arrival, and the count says, against how many the sender
 * says it sent, how many arrived, were lost, arrived twice or out of order.
 */

/** What one receiver got from one sender, against what the sender sent. */
export interface DeliveryCount {
  /** Distinct numbers from 1 to the expected count that arrived. */
  delivered: number;
  /** Numbers from 1 to the expected count that never arrived. */
  lost: number;
  /** Arrivals of a number that had already arrived. */
  duplicated: number;
  /** First arrivals of a number lower than one that arrived before it. */
  reordered: number;
  /** Distinct numbers outside 1 to the expected count: the sender did not say it sent them. */
  unexpected: number;
}

interface SenderRecord {
  seen: Set<number>;
  highest: number;
  duplicated: number;
  reordered: number;
}

/**
 * Records each numbered arrival, by sender.
 *
 * @example Counting a loss and a duplicate
 * ```ts
 * import { DeliveryLedger } from "./delivery_ledger.ts";
 * const ledger = new DeliveryLedger();
 * for (const seq of [1, 2, 2, 4]) ledger.record(7, seq);
 * console.log(ledger.count(7, 4)); // { delivered: 3, lost: 1, duplicated: 1, reordered: 0, unexpected: 0 }
 * ```
 */
export class DeliveryLedger {
  readonly #senders = new Map<number, SenderRecord>();

  /** Records that message number `seq` from `sender` arrived. */
  record(sender: number, seq: number): void {
    let r = this.#senders.get(sender);
    if (!r) this.#senders.set(sender, r = { seen: new Set(), highest: 0, duplicated: 0, reordered: 0 });
    if (r.seen.has(seq)) {
      r.duplicated++;
      return;
    }
    r.seen.add(seq);
    if (seq < r.highest) r.reordered++;
    else r.highest = seq;
  }

  /** How the arrivals from `sender` compare with the `expected` messages it says it sent. */
  count(sender: number, expected: number): DeliveryCount {
    const r = this.#senders.get(sender);
    if (!r) return { delivered: 0, lost: expected, duplicated: 0, reordered: 0, unexpected: 0 };
    let delivered = 0;
    for (const seq of r.seen) if (Number.isInteger(seq) && seq >= 1 && seq <= expected) delivered++;
    return {
      delivered,
      lost: expected - delivered,
      duplicated: r.duplicated,
      reordered: r.reordered,
      unexpected: r.seen.size - delivered,
    };
  }

  /** Arrivals recorded from every sender, duplicates included. */
  arrivals(): number {
    let total = 0;
    for (const r of this.#senders.values()) total += r.seen.size + r.duplicated;
    return total;
  }
}

/** Adds `b` to `a`, field by field. */
export function addCounts(a: DeliveryCount, b: DeliveryCount): DeliveryCount {
  return {
    delivered: a.delivered + b.delivered,
    lost: a.lost + b.lost,
    duplicated: a.duplicated + b.duplicated,
    reordered: a.reordered + b.reordered,
    unexpected: a.unexpected + b.unexpected,
  };
}

/** A count with nothing in it. */
export const NO_DELIVERIES: DeliveryCount = { delivered: 0, lost: 0, duplicated: 0, reordered: 0, unexpected: 0 };
