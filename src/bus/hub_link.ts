import { wakeAll } from "../util/wake_all.ts";
import type { Connection } from "../transport/connection.ts";
import { ConnectError, ErrorCode, FrameTooLargeError, IpcError, QueueFullError } from "../errors.ts";
import { errorFromCode } from "../error_from_code.ts";
import { withTimeout } from "../util/with_timeout.ts";
import { deliverEnvelope } from "./deliver_envelope.ts";
import { envelopeBytes, type EnvelopeFields, writeEnvelope } from "./fast_envelope.ts";
import { copyBytes } from "../util/copy_bytes.ts";
import { cborBytes, type CborData } from "../codec/byte_string_cbor.ts";
import { FrameReceiver } from "./frame_receiver.ts";
import { FrameWriter } from "./frame_writer.ts";
import type { Ack, Answer, Link, LinkHandler, LinkWelcome, Sequence } from "./link.ts";
import {
  asAck,
  asBusyOrRoom,
  asEnvelope,
  asErrorRecord,
  asLeave,
  asUndeliverable,
  asWelcome,
  encodeMessage,
  type ErrorRecord,
  type Hello,
  Kind,
  type MemberChange,
  type PatternRecord,
  type PeerInfo,
  PROTOCOL_VERSION,
} from "./protocol.ts";
import { writeAnswer } from "./write_answer.ts";
import { cachedMembership, decodeWelcome, membershipOf } from "./membership_cache.ts";
import type { UndeliverableDetail } from "./link.ts";
import { envelopeWithHeaders, type MessageHeaders } from "./headers.ts";

/** Largest `w` a request carries: envelope integers stay within 4-byte CBOR heads. */
const MAX_WAIT_MS = 0x7fffffff;

/** Settings of a {@linkcode HubLink}. */
export interface HubLinkSettings {
  maxQueueMessages: number;
  maxQueueBytes: number;
  maxFrameBytes: number;
  /** Milliseconds for the handshake. */
  timeout: number;
  /** What the hello says of this peer (the caller knows the runtime and process). */
  hello: Omit<Hello, "k" | "v">;
}

/**
 * A peer's link to a hub over one {@linkcode Connection}: the hello/welcome
 * handshake, the read loop and dispatch of incoming frames, the batched
 * writer, and the hub's flow control (`busy`/`room` per destination).
 */
export class HubLink implements Link {
  readonly #conn: Connection;
  readonly #settings: HubLinkSettings;
  readonly #writer: FrameWriter;
  #handler: LinkHandler | undefined;
  #id = 0;
  /** Destinations the hub reported full, until it reports room. */
  readonly #busy = new Set<number>();
  #roomWaiters: Array<() => void> = [];
  /** The hub said it is closing: no goodbye then. */
  #hubClosing = false;
  /** Closed by either side: no more reading, no `lost`. */
  #done = false;
  /** The hub said it disconnects this peer as a slow consumer: why the link is about to end. */
  #cutLoose: IpcError | undefined;

  constructor(conn: Connection, settings: HubLinkSettings) {
    this.#conn = conn;
    this.#settings = settings;
    // No progress times: nothing on a peer's side asks how long its queue has waited.
    this.#writer = new FrameWriter(conn, {
      maxMessages: settings.maxQueueMessages,
      maxBytes: settings.maxQueueBytes,
    }, false);
  }

  async open(handler: LinkHandler): Promise<LinkWelcome> {
    this.#handler = handler;
    const writer = this.#writer;
    const hello: Hello = { k: Kind.Hello, v: PROTOCOL_VERSION, ...this.#settings.hello };
    writer.push(encodeMessage(hello));
    // Frames before the welcome is handled (the welcome, and whatever came
    // with it) are kept, copied, in order.
    let early: Uint8Array[] | undefined = [];
    let ended: { reason: string | undefined; error: unknown } | undefined;
    let wake: (() => void) | undefined;
    new FrameReceiver(this.#conn, this.#settings.maxFrameBytes, {
      frame: (body, own) => {
        if (!early) return this.#onFrame(body, own);
        early.push(own ? body : copyBytes(body));
        wake?.();
      },
      end: (error) => {
        let reason: string | undefined;
        if (error !== undefined) {
          reason = error instanceof Error ? error.message : String(error);
          if (error instanceof IpcError && !early) this.#handler!.error(error);
        }
        ended = { reason, error };
        wake?.();
        if (!early) void this.#lost(reason);
      },
    });
    const timeout = this.#settings.timeout;
    const first = await withTimeout(
      (async () => {
        while (early!.length === 0) {
          if (ended) throw ended.error ?? new ConnectError("The hub closed the connection during the handshake");
          await new Promise<void>((resolve) => (wake = resolve));
        }
        return this.#readWelcome(early![0]);
      })(),
      timeout,
      () => `No answer to the handshake within ${timeout} ms`,
    ).catch(async (err) => {
      early = undefined;
      this.#done = true;
      writer.abort();
      await this.#conn.close();
      throw err;
    });
    wake = undefined;
    this.#id = first.id;
    writer.onWritten = undefined;
    const welcome = { id: first.id, peers: first.peers, ...(first.host === undefined ? {} : { host: first.host }) };
    handler.welcome(welcome);
    const rest = early.slice(1);
    if (rest.length === 0 && !ended) early = undefined;
    else {
      // Frames that came with the welcome wait a macrotask, so the caller of
      // connect() can register handlers for them first; later ones queue behind.
      setTimeout(() => {
        const queued = early!.slice(1);
        early = undefined;
        for (const body of queued) if (!this.#done) this.#onFrame(body, true);
        if (ended) void this.#lost(ended.reason);
      }, 0);
    }
    return welcome;
  }

  /** Reads the welcome (or the refusal) in the hub's first frame. */
  #readWelcome(frame: Uint8Array): { id: number; host: number | undefined; peers: PeerInfo[] } {
    const m = asEnvelope(decodeWelcome(frame));
    if (m.k === Kind.Refuse || m.k === Kind.Error) {
      const e = asErrorRecord(m.e);
      throw errorFromCode(e.code ?? "ipc_error", e.message);
    }
    if (m.k !== Kind.Welcome || !Number.isSafeInteger(m.id) || !Array.isArray(m.peers)) {
      throw new ConnectError(`Unexpected answer to the handshake: ${String(m.k)}`);
    }
    const w = asWelcome(m);
    return { id: w.id, host: w.host, peers: w.peers };
  }

  /** The connection ended (not by close()): the handler hears it is lost, and why. */
  async #lost(reason: string | undefined): Promise<void> {
    if (this.#done) return;
    await this.#conn.close();
    this.#end();
    // A hub that cut this peer loose says why; one that closes says `close`
    // first; one whose process died (SIGKILL, a crash) just vanishes, and
    // the kernel ends or resets the connection.
    const cut = this.#cutLoose;
    if (cut) this.#handler!.lost(cut.code, cut);
    else {
      this.#handler!.lost(
        this.#hubClosing
          ? `hub closed${reason === undefined ? "" : `: ${reason}`}`
          : `connection reset: the hub went away without closing${reason === undefined ? "" : ` (${reason})`}`,
      );
    }
  }

  /**
   * Dispatches one frame: a view into the read buffer, valid only during
   * this call, unless `own`. The data handed on is the handler's to keep:
   * copied out unless the frame is `own`.
   */
  #applyMembership(changes: readonly MemberChange[]): void {
    const h = this.#handler!;
    for (const change of changes) {
      if ("join" in change) h.join(change.join);
      else {
        this.#setRoom(change.leave);
        h.leave(change.leave, change.reason);
      }
    }
  }

  #onFrame(body: Uint8Array, own: boolean): void {
    const h = this.#handler!;
    const known = cachedMembership(body);
    if (known) return this.#applyMembership(known);
    const m = deliverEnvelope(body, h, own);
    if (!m) return;
    switch (m.k) {
      case Kind.Join:
      case Kind.Members:
        // Joins and leaves (batched by the hub on a large bus), in order.
        return this.#applyMembership(membershipOf(m, body));
      case Kind.Ack: {
        const a = asAck(m);
        return h.ack(a.f, { upTo: a.s, gap: a.g === true, skip: a.skip === true });
      }
      case Kind.Leave: {
        const l = asLeave(m);
        this.#setRoom(l.id);
        return h.leave(l.id, l.reason ?? "left");
      }
      case Kind.Undeliverable: {
        const u = asUndeliverable(m);
        const detail: UndeliverableDetail = { reason: u.reason };
        if (u.t !== undefined) detail.to = u.t;
        if (u.n !== undefined) detail.name = u.n;
        if (u.c !== undefined && u.c > 1) detail.count = u.c;
        // Broadcasts refused for a full peer (`b`) hold nobody back: the hub paces them itself.
        if (detail.reason === "queue_full" && detail.to !== undefined && u.b !== true) this.#busy.add(detail.to);
        return h.undeliverable(detail, u.s !== undefined);
      }
      case Kind.Busy:
        this.#busy.add(asBusyOrRoom(m).id);
        return;
      case Kind.Room: {
        const { id } = asBusyOrRoom(m);
        this.#busy.delete(id);
        h.room(id);
        if (this.#busy.size === 0) wakeAll(this.#roomWaiters);
        return;
      }
      case Kind.Error: {
        const err = errorFromCode(
          String((m.e as ErrorRecord)?.code ?? "ipc_error"),
          String((m.e as ErrorRecord)?.message),
        );
        // The hub closes the connection after this one: it is why.
        if (err.code === ErrorCode.SlowConsumer) this.#cutLoose = err;
        return h.error(err);
      }
      case Kind.Close:
        this.#hubClosing = true;
        return h.closing();
      default:
        // Newer hubs may send kinds this build does not know: ignore them.
        h.drop("unknown_kind");
    }
  }

  #setRoom(id: number): void {
    this.#busy.delete(id);
    if (this.#busy.size === 0) wakeAll(this.#roomWaiters);
  }

  #end(): void {
    this.#done = true;
    void this.#conn.close();
    this.#busy.clear();
    wakeAll(this.#roomWaiters);
  }

  checkRoom(to: number | undefined, what: string): void {
    if (this.#busy.size === 0) return;
    if (to === undefined) {
      throw new QueueFullError(
        `Cannot broadcast ${what}: the queue at the hub of peer ${[...this.#busy][0]} is full; await flush() and retry`,
      );
    }
    if (this.#busy.has(to)) {
      throw new QueueFullError(
        `Cannot send ${what} to peer ${to}: its queue at the hub is full; await flush() and retry`,
      );
    }
  }

  alert(to: number | undefined, name: string, data: CborData, seq?: Sequence, headers?: MessageHeaders): void {
    if (seq !== undefined) {
      // Kept by the delivery policy until acknowledged and resent on the next
      // link, so a full queue only delays them: never refused here.
      this.#writer.push(
        encodeMessage({
          k: Kind.Alert,
          f: this.#id,
          ...(to === undefined ? {} : { t: to }),
          n: name,
          d: cborBytes(data),
          s: seq,
          ...(headers === undefined ? {} : { h: headers }),
        }),
      );
      return;
    }
    this.#pushEnvelope("a", [["f", this.#id], ["t", to], ["n", name], ["d", data]], name, false, headers);
  }

  request(m: Parameters<Link["request"]>[0]): void {
    const wait = Math.min(Math.ceil(m.timeout), MAX_WAIT_MS);
    this.#pushEnvelope(
      "q",
      [["f", this.#id], ["t", m.to], ["r", m.id], ["u", m.route], ["w", wait], ["d", m.data]],
      m.route,
      true,
      m.headers,
    );
  }

  answer(to: number, id: number, answer: Answer): void {
    writeAnswer(this.#writer, this.#id, { f: to, r: id }, this.#settings.maxFrameBytes, answer);
  }

  ack(to: number, ack: Ack): void {
    this.#writer.push(encodeMessage({
      k: Kind.Ack,
      f: this.#id,
      t: to,
      s: ack.upTo,
      ...(ack.gap ? { g: true } : {}),
      ...(ack.skip ? { skip: true } : {}),
    }));
  }

  routes(patterns: PatternRecord[]): void {
    this.#writer.push(encodeMessage({ k: Kind.Handle, patterns }));
  }

  async flush(): Promise<void> {
    await this.#writer.idle();
    while (this.#busy.size > 0 && !this.#done) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
  }

  queued(): { messages: number; bytes: number } {
    return { messages: this.#writer.messages, bytes: this.#writer.bytes };
  }

  async close(): Promise<void> {
    if (!this.#hubClosing) {
      try {
        this.#writer.push(encodeMessage({ k: Kind.Bye }));
      } catch {
        // Nothing to say goodbye over.
      }
    }
    await this.#writer.close(1000);
    this.#end();
  }

  /**
   * Queues an alert or request envelope within the limits: written in place
   * (see fast_envelope.ts), or through the general encoder when it has
   * headers (the fast path writes flat maps only).
   */
  #pushEnvelope(
    kind: "a" | "q",
    fields: EnvelopeFields,
    what: string,
    isRequest: boolean,
    headers: MessageHeaders | undefined,
  ): void {
    if (headers !== undefined) return this.#pushBody(envelopeWithHeaders(kind, fields, headers), what, isRequest);
    const size = envelopeBytes(fields);
    this.#checkLimits(size, what, isRequest);
    writeEnvelope(this.#writer, kind, fields, size);
  }

  /** Queues an envelope encoded the general way, within the same limits. */
  #pushBody(body: Uint8Array, what: string, isRequest: boolean): void {
    this.#checkLimits(body.byteLength, what, isRequest);
    this.#writer.push(body);
  }

  #checkLimits(size: number, what: string, isRequest: boolean): void {
    if (size > this.#settings.maxFrameBytes) {
      throw new FrameTooLargeError(
        `Cannot send ${what}: frame of ${size} bytes exceeds maxFrameBytes ${this.#settings.maxFrameBytes}`,
      );
    }
    const writer = this.#writer;
    if (!writer.hasRoom()) {
      throw new QueueFullError(
        `Cannot ${
          isRequest ? "request" : "send"
        } ${what}: outgoing queue is full (${writer.messages} messages, ${writer.bytes} bytes); await flush() and retry`,
      );
    }
  }
}
