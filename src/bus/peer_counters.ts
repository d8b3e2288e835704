/** The counters behind {@linkcode PeerStats}, shared by the parts of a peer. */
export class PeerCounters {
  alertsSent = 0;
  alertsReceived = 0;
  requestsSent = 0;
  requestsServed = 0;
  readonly dropped: Record<string, number> = {};

  /** Counts `count` messages (default one) dropped for `reason`. */
  drop(reason: string, count = 1): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + count;
  }
}
