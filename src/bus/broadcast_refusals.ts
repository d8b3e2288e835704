import type { PeerLink } from "./peer_link.ts";
import { encodeMessage, Kind } from "./protocol.ts";

/** Broadcast refusals are reported to their sender at most this often per destination, with a count. */
const REPORT_MS = 250;

/**
 * Reports of broadcasts a full peer could not take: a sender broadcasting
 * past a frozen peer would otherwise get an `undeliverable` per broadcast,
 * thousands a second. Refusals are counted per (sender, destination) and
 * written every REPORT_MS as one `undeliverable { t, b: true, c }` each.
 */
export class BroadcastRefusals {
  /** Senders with refusals not yet reported. */
  readonly #pending = new Set<PeerLink>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Counts broadcast `name` of `from`, refused for peer `to`. */
  refuse(from: PeerLink, to: number, name: string): void {
    from.unreported ??= new Map();
    const counted = from.unreported.get(to);
    if (counted) {
      counted.count++;
      counted.name = name;
    } else from.unreported.set(to, { count: 1, name });
    this.#pending.add(from);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      for (const link of this.#pending) this.report(link);
    }, REPORT_MS);
  }

  /** Writes `from`'s refusals not yet reported: one `undeliverable` per destination, `c` the count. */
  report(from: PeerLink): void {
    this.#pending.delete(from);
    const unreported = from.unreported;
    from.unreported = undefined;
    if (!unreported || from.gone) return;
    for (const [to, { count, name }] of unreported) {
      from.writer.push(
        encodeMessage({ k: Kind.Undeliverable, n: name, reason: "queue_full", t: to, b: true, c: count }),
      );
    }
  }

  /** Stops the timer (the hub closed). */
  close(): void {
    clearTimeout(this.#timer);
    this.#pending.clear();
  }
}
