import { wakeAll } from "../util/wake_all.ts";
import { QueueFullError } from "../errors.ts";
import type { Ack, DeliveryHost, DeliveryPolicy, Sequence } from "../bus/link.ts";
import type { MessageHeaders } from "../bus/headers.ts";

interface Entry {
  name: string;
  d: Uint8Array;
  headers: MessageHeaders | undefined;
  /** Recipients that have not acknowledged it yet. */
  remaining: number;
}

interface Outstanding {
  seq: number;
  entry: Entry;
  broadcast: boolean;
}

/** Acknowledge at the latest after this many ms, or after this many deliveries from one sender. */
const ACK_DELAY_MS = 5;
const ACK_EVERY = 256;

/**
 * Exactly-once, in-order alerts between channel members across hub failover.
 *
 * Each (sender, recipient) pair numbers its alerts 1, 2, 3 … (a broadcast
 * carries a map of recipient → number). The recipient delivers number
 * `next` and drops anything lower as a duplicate; it acknowledges
 * cumulatively. The sender keeps every alert until each of its recipients
 * acknowledged it, and resends what is outstanding when a new hub comes up or
 * a recipient rejoins. A number above `next` means the hub lost frames in
 * between: the recipient drops it and asks once (`g: true`) for a resend from
 * `next`, go-back-N style. Numbering belongs to the pair's incarnations and
 * survives a member leaving the view: one side may give up on the other
 * (grace period over) while the other never noticed, so when the numbers
 * asked for were dropped as undeliverable, the sender answers with
 * `skip: true` up to the first number it still holds. See PROTOCOL.md, "Reliable
 * delivery".
 */
export class ReliableDelivery implements DeliveryPolicy {
  readonly #host: DeliveryHost;
  readonly #limit: number;
  /** Per recipient, its unacknowledged alerts in number order. */
  readonly #outstanding = new Map<number, Outstanding[]>();
  readonly #nextSeq = new Map<number, number>();
  #entries = 0;
  /** Per sender, the next number expected from it. */
  readonly #expected = new Map<number, number>();
  readonly #delivered = new Map<number, number>();
  readonly #ackDue = new Map<number, number>();
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  /** Per sender, the `next` we last asked a resend from, so we ask once. */
  readonly #asked = new Map<number, number>();
  /** Per recipient, the number we last resent from on its request. */
  readonly #resentFrom = new Map<number, number>();
  #present = new Set<number>();
  /** Per member, the incarnation its numbers belong to. */
  readonly #incs = new Map<number, string | undefined>();
  #connected = false;
  #roomWaiters: Array<() => void> = [];
  #ackedWaiters: Array<() => void> = [];

  constructor(host: DeliveryHost, limit: number) {
    this.#host = host;
    this.#limit = limit;
  }

  /** Alerts kept until acknowledged. */
  get outstanding(): number {
    return this.#entries;
  }

  #reserve(name: string): void {
    if (this.#entries >= this.#limit) {
      throw new QueueFullError(
        `Cannot send ${name}: ${this.#entries} alerts await acknowledgement (queueLimit ${this.#limit}); await flush() and retry`,
      );
    }
  }

  #assign(to: number, entry: Entry, broadcast: boolean): number {
    const seq = this.#nextSeq.get(to) ?? 1;
    this.#nextSeq.set(to, seq + 1);
    let list = this.#outstanding.get(to);
    if (!list) this.#outstanding.set(to, list = []);
    list.push({ seq, entry, broadcast });
    return seq;
  }

  /** Sends alert `name` to member `to`, now if it is at the hub, else when it is. */
  send(to: number, name: string, d: Uint8Array, headers?: MessageHeaders): void {
    this.#reserve(name);
    const entry: Entry = { name, d, headers, remaining: 1 };
    this.#entries++;
    const seq = this.#assign(to, entry, false);
    if (this.#connected && this.#present.has(to)) {
      this.#host.link()?.alert(to, name, d, seq, headers);
    }
  }

  /** Broadcasts alert `name` to `members` (this one included). */
  broadcast(members: number[], name: string, d: Uint8Array, headers?: MessageHeaders): void {
    this.#reserve(name);
    const entry: Entry = { name, d, headers, remaining: members.length };
    this.#entries++;
    const seqs: Record<number, number> = {};
    for (const to of members) seqs[to] = this.#assign(to, entry, true);
    // Members away (between hubs) are not at the hub: they get it on rejoin.
    if (this.#connected) this.#host.link()?.alert(undefined, name, d, seqs, headers);
  }

  /**
   * Decides whether an incoming alert is delivered: true for the next number
   * from its sender (or an unnumbered one), false for a duplicate or a gap.
   */
  accept(from: number, s: Sequence | undefined): boolean {
    const seq = typeof s === "number" ? s : (s as Record<string, unknown>)?.[this.#host.selfId()];
    if (typeof seq !== "number") return true;
    const next = this.#expected.get(from) ?? 1;
    if (seq < next) {
      this.#host.count("duplicate");
      this.#scheduleAck(from, next - 1);
      return false;
    }
    if (seq > next) {
      if (this.#asked.get(from) !== next && this.#connected) {
        this.#asked.set(from, next);
        this.#host.link()?.ack(from, { upTo: next - 1, gap: true });
      }
      return false;
    }
    this.#expected.set(from, next + 1);
    const count = (this.#delivered.get(from) ?? 0) + 1;
    this.#delivered.set(from, count);
    this.#scheduleAck(from, next);
    if (count % ACK_EVERY === 0) this.#flushAcks();
    return true;
  }

  #scheduleAck(from: number, upTo: number): void {
    this.#ackDue.set(from, upTo);
    this.#ackTimer ??= setTimeout(() => this.#flushAcks(), ACK_DELAY_MS);
  }

  #flushAcks(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (!this.#connected) return;
    for (const [to, upTo] of this.#ackDue) {
      if (this.#present.has(to)) this.#host.link()?.ack(to, { upTo });
    }
    this.#ackDue.clear();
  }

  /**
   * Member `from` acknowledged everything up to `upTo`; with `gap`, it asks
   * for the rest again. With `skip`, `from` says instead that it will never
   * send us numbers up to `upTo` again (it gave up on us and reported them
   * undeliverable), so we expect `upTo + 1` next.
   */
  onAck(from: number, { upTo, gap = false, skip = false }: Ack): void {
    if (skip) {
      if ((this.#expected.get(from) ?? 1) <= upTo) {
        this.#expected.set(from, upTo + 1);
        this.#asked.delete(from);
      }
      return;
    }
    const list = this.#outstanding.get(from) ?? [];
    let done = 0;
    while (done < list.length && list[done].seq <= upTo) {
      if (--list[done].entry.remaining === 0) this.#entries--;
      done++;
    }
    if (done > 0) list.splice(0, done);
    if (gap) {
      // Numbers it asks for that we no longer hold were dropped when we gave up on it: skip them.
      const first = list[0]?.seq ?? this.#nextSeq.get(from) ?? 1;
      if (first > upTo + 1 && this.#connected && this.#present.has(from)) {
        this.#host.link()?.ack(from, { upTo: first - 1, skip: true });
      }
      if (this.#resentFrom.get(from) !== upTo + 1) {
        this.#resentFrom.set(from, upTo + 1);
        this.#resend(from);
      }
    }
    this.#wakeIfRoom();
  }

  #resend(to: number): void {
    if (!this.#connected || !this.#present.has(to)) return;
    for (const { seq, entry } of this.#outstanding.get(to) ?? []) {
      this.#host.link()?.alert(to, entry.name, entry.d, seq, entry.headers);
    }
  }

  /** A new connection to a hub is up, with these members at it. */
  onSessionStart(present: Iterable<number>): void {
    this.#connected = true;
    this.#present = new Set(present);
    this.#asked.clear();
    this.#resentFrom.clear();
    for (const to of this.#outstanding.keys()) this.#resend(to);
    this.#flushAcks();
  }

  /** The connection to the hub is gone; alerts wait for the next one. */
  onSessionLost(): void {
    this.#connected = false;
    this.#present.clear();
  }

  /** Member `id` reached the current hub (back from a failover, or new). */
  onPresent(id: number): void {
    this.#present.add(id);
    this.#resend(id);
  }

  /**
   * Member `id` is in view with incarnation `inc`. Numbers in both directions
   * belong to an incarnation: a new one starts again from 1, while the same
   * one, back after we gave up on it, carries on where it was, since it may
   * not know that we did.
   */
  onMember(id: number, inc: string | undefined): void {
    if (this.#incs.has(id) && this.#incs.get(id) !== inc) {
      this.#nextSeq.delete(id);
      this.#expected.delete(id);
      this.#delivered.delete(id);
      this.#ackDue.delete(id);
      this.#asked.delete(id);
      this.#resentFrom.delete(id);
    }
    this.#incs.set(id, inc);
  }

  /**
   * Member `id` left our view: what it did not acknowledge is reported
   * undeliverable. The numbering is kept for {@linkcode onMember}.
   */
  onGone(id: number, reason: string): void {
    const list = this.#outstanding.get(id) ?? [];
    this.#outstanding.delete(id);
    this.#ackDue.delete(id);
    this.#asked.delete(id);
    this.#resentFrom.delete(id);
    this.#present.delete(id);
    for (const { entry } of list) {
      if (--entry.remaining === 0) this.#entries--;
      this.#host.undeliverable(id, entry.name, reason);
    }
    this.#wakeIfRoom();
  }

  /** Resolves when fewer than half of `queueLimit` alerts await acknowledgement. */
  room(): Promise<void> {
    if (this.#entries * 2 < this.#limit) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Resolves when every alert sent so far has been acknowledged by all its recipients. */
  acknowledged(): Promise<void> {
    if (this.#entries === 0) return Promise.resolve();
    return new Promise((resolve) => this.#ackedWaiters.push(resolve));
  }

  #wakeIfRoom(): void {
    if (this.#entries * 2 < this.#limit) wakeAll(this.#roomWaiters);
    if (this.#entries === 0) wakeAll(this.#ackedWaiters);
  }

  /** Stops timers and releases waiters. */
  close(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    this.#connected = false;
    wakeAll(this.#roomWaiters);
    wakeAll(this.#ackedWaiters);
  }
}
