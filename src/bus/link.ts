/**
 * The seam between a {@linkcode Peer} (the facade users call) and what
 * carries its messages. Today's link is the connection to a Unix-socket hub
 * (`hub_link.ts`); a NATS connection is meant to be a second one, with no
 * change to the facade.
 *
 * The facade owns what is the same over every link: alert handlers and
 * subscriptions, routes and serving them, request correlation (ids, deadlines),
 * the peer view, stats and events. The link owns the wire: handshake and id
 * assignment, encoding, flow control, presence. Data travels as CBOR bytes
 * both ways: the facade encodes and decodes values, the link never does.
 *
 * @module
 */
import type { CborData } from "../codec/byte_string_cbor.ts";
import type { MessageHeaders } from "./headers.ts";
import type { IpcError } from "../errors.ts";
import type { ErrorRecord, PatternRecord, PeerInfo } from "./protocol.ts";

/** What `alert` and `request` carry: CBOR, or a byte string's not yet written (`byte_string_cbor.ts`). */
export type { CborData };

/**
 * The answer to a request, as a link carries it: the CBOR of the result
 * (with its headers, if any), or an error record.
 */
export type Answer = { data: Uint8Array; headers?: MessageHeaders } | { error: ErrorRecord };

/**
 * The sequence number of a reliably delivered alert: one number for a
 * message to one peer, a map of recipient id → number for a broadcast.
 * Links that carry no delivery policy never see one.
 */
export type Sequence = number | Record<string, number>;

/** An acknowledgement of reliably delivered alerts (see {@linkcode DeliveryPolicy}). */
export interface Ack {
  /** Everything up to this number was delivered (with `skip`: will never be sent). */
  upTo: number;
  /** A gap was seen: send again what follows `upTo`. */
  gap?: boolean;
  /** The sender gave up on the numbers up to `upTo`: expect `upTo + 1` next. */
  skip?: boolean;
}

/** Why a message accepted by `send`/`broadcast` did not reach its destination. */
export interface UndeliverableDetail {
  /** The intended destination (absent for a broadcast). */
  to?: number;
  /** The alert's name. */
  name?: string;
  /** `no_such_peer`, `queue_full`, `peer_left` … */
  reason: string;
  /**
   * How many alerts the report stands for, when more than one: broadcasts a
   * full peer could not take are reported together, at most one report per
   * peer every 250 ms.
   */
  count?: number;
}

/** What a link learns when it opens. */
export interface LinkWelcome {
  /** This peer's id on the bus. */
  id: number;
  /** The peers present, this one included. */
  peers: PeerInfo[];
  /** Id of the peer hosting the hub, where the bus has one (channels). */
  host?: number;
}

/**
 * What a link reports to the peer above it; the facade implements it.
 *
 * `alert` and `request` take positional arguments so that the per-message
 * path allocates nothing beyond what the wire decoder already made. The
 * `data` of a request or an answer is the handler's to keep: not a view into
 * a buffer the link reads into again (the hub link copies it out of its read
 * buffer unless the frame had a buffer of its own), so the facade decodes
 * byte strings as views of it. An alert's `data` is valid only during the
 * call: the facade decodes it there, copying what it keeps.
 */
export interface LinkHandler {
  /**
   * The link is open: called once, before any other member and before
   * `open()` resolves, so the peer takes in its id and the peers present
   * before the first message is delivered.
   */
  welcome(welcome: LinkWelcome): void;
  /**
   * An alert arrived; `to` undefined means a broadcast, `seq` is set for
   * reliably delivered ones, `headers` when the sender gave some.
   */
  alert(
    from: number,
    to: number | undefined,
    name: string,
    data: Uint8Array,
    seq: Sequence | undefined,
    headers?: MessageHeaders,
  ): void;
  /** A request for one of this peer's routes arrived; the facade serves it and calls `link.answer()`. */
  request(from: number, id: number, route: string, data: Uint8Array, headers?: MessageHeaders): void;
  /** Settles this peer's pending request `id` (a response, an error, or the link's own refusal). */
  answer(id: number, answer: Answer): void;
  /** A peer joined. */
  join(info: PeerInfo): void;
  /** Peer `id` left. */
  leave(id: number, reason: string): void;
  /** An alert this peer sent will not arrive; `sequenced` says it carried a sequence number. */
  undeliverable(detail: UndeliverableDetail, sequenced: boolean): void;
  /** Peer `id`, reported full before, has room again. */
  room(id: number): void;
  /** Peer `from` acknowledged reliably delivered alerts. */
  ack(from: number, ack: Ack): void;
  /** Counts a message the link dropped, by reason, in `stats().dropped`. */
  drop(reason: string): void;
  /** An error to report as an `error` event (the link stays up). */
  error(err: unknown): void;
  /** The far side said it is closing: new messages fail with `ClosedError` from now on. */
  closing(): void;
  /**
   * The link is gone (not called after {@linkcode Link.close}). `error`, when
   * the far side said why it ended the link (code `slow_consumer`), is what
   * pending requests reject with.
   */
  lost(reason: string, error?: IpcError): void;
}

/**
 * What carries a peer's messages: a hub connection, or a NATS connection.
 * Methods that queue throw synchronously: `QueueFullError`,
 * `FrameTooLargeError`, `ClosedError`. The `data` given to `alert`,
 * `request` and `answer` is valid only during the call (the facade encodes
 * into one reused buffer, or hands a user's byte array over unencoded as a
 * `ByteStringCbor`): a link copies what it queues before returning, as
 * writing it into a frame does.
 */
export interface Link {
  /**
   * Starts the link: handshake, `handler.welcome()`, then reading. Resolves
   * with the same welcome; rejects when the handshake fails.
   */
  open(handler: LinkHandler): Promise<LinkWelcome>;
  /**
   * Queues an alert (`to` undefined = broadcast). Without `seq` it is checked
   * against the frame and queue limits (the far side's flow control is
   * {@linkcode Link.checkRoom}, called first); with `seq` (reliable delivery)
   * it is queued regardless, since the policy keeps it until acknowledged.
   */
  alert(to: number | undefined, name: string, data: CborData, seq?: Sequence, headers?: MessageHeaders): void;
  /**
   * Throws `QueueFullError` when the far side reported destination `to` full
   * (for a broadcast: any destination; only numbered broadcasts ask, plain
   * ones are paced by the far side). `what` names the alert in the message.
   */
  checkRoom(to: number | undefined, what: string): void;
  /**
   * Queues request `m.id` (`to` undefined: the link picks a responder, or
   * fails it through `handler.answer` with `NoResponderError`).
   */
  request(
    m: {
      id: number;
      to: number | undefined;
      route: string;
      data: CborData;
      timeout: number;
      headers?: MessageHeaders;
    },
  ): void;
  /** Queues the answer to request `id` of peer `to`; an answer too large for a frame becomes an error. */
  answer(to: number, id: number, answer: Answer): void;
  /** Queues an acknowledgement for peer `to` (reliable delivery). */
  ack(to: number, ack: Ack): void;
  /** The routes this peer serves, for the link to announce. */
  routes(patterns: PatternRecord[]): void;
  /** Resolves when what was queued has left and every destination reported full has room. */
  flush(): Promise<void>;
  /** Messages and bytes waiting to be written (for `stats()`). */
  queued(): { messages: number; bytes: number };
  /** Leaves: says goodbye where the wire has one, drains (bounded), closes. */
  close(): Promise<void>;
}

/**
 * A delivery policy: a hook the facade calls where alert delivery can be
 * made stronger than at-most-once. The channel's exactly-once delivery
 * (`ReliableDelivery`) implements it; a plain peer has none.
 */
export interface DeliveryPolicy {
  /** Sends alert `name` to `to`; the policy numbers it and sends it over the link when it can. */
  send(to: number, name: string, data: Uint8Array, headers?: MessageHeaders): void;
  /** Broadcasts alert `name` to `members` (this peer included). */
  broadcast(members: number[], name: string, data: Uint8Array, headers?: MessageHeaders): void;
  /** Whether an incoming alert with sequence `seq` from `from` is delivered (false: duplicate or gap). */
  accept(from: number, seq: Sequence | undefined): boolean;
  /** Peer `from` acknowledged. */
  onAck(from: number, ack: Ack): void;
  /** A link opened with these members present. */
  onSessionStart(present: Iterable<number>): void;
  /** The link is gone; alerts wait for the next one. */
  onSessionLost(): void;
  /** Member `id` is present at the current link (joined, back, or has room again). */
  onPresent(id: number): void;
  /** Member `id` is in view with incarnation `inc`. */
  onMember(id: number, inc: string | undefined): void;
  /** Member `id` left the view: what it did not acknowledge is undeliverable. */
  onGone(id: number, reason: string): void;
  /** Resolves when the policy has room for more alerts. */
  room(): Promise<void>;
  /** Resolves when everything sent was acknowledged. */
  acknowledged(): Promise<void>;
  /** Stops timers, releases waiters. */
  close(): void;
}

/** What a {@linkcode DeliveryPolicy} needs from the peer it serves. */
export interface DeliveryHost {
  /** This peer's id. */
  selfId(): number;
  /** The current link, when connected. */
  link(): Link | undefined;
  /** Reports an alert that will never be delivered to `to`. */
  undeliverable(to: number, name: string, reason: string): void;
  /** Counts a message dropped on purpose (duplicates). */
  count(reason: string): void;
}
