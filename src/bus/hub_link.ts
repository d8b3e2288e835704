import { decodeEnvelope } from "../codec/cbor.ts";
import { FrameParser } from "../codec/frame_parser.ts";
import type { Connection } from "../transport/connection.ts";
import { ConnectError, errorFromCode, FrameTooLargeError, IpcError, QueueFullError } from "../errors.ts";
import { withTimeout } from "../util/with_timeout.ts";
import { envelopeBytes, type EnvelopeFields, readEnvelope, writeEnvelope } from "./fast_envelope.ts";
import { FrameWriter } from "./frame_writer.ts";
import type { Ack, Answer, Link, LinkHandler, LinkWelcome, Sequence } from "./link.ts";
import {
  asAck,
  asAlert,
  asBusyOrRoom,
  asEnvelope,
  asErrorRecord,
  asJoin,
  asLeave,
  asReply,
  asRequest,
  asUndeliverable,
  asWelcome,
  encodeMessage,
  type ErrorRecord,
  type Hello,
  Kind,
  type PatternRecord,
  type PeerInfo,
  PROTOCOL_VERSION,
} from "./protocol.ts";
import { writeAnswer } from "./write_answer.ts";
import type { UndeliverableDetail } from "./link.ts";

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

  constructor(conn: Connection, settings: HubLinkSettings) {
    this.#conn = conn;
    this.#settings = settings;
    this.#writer = new FrameWriter(conn.writable, {
      maxMessages: settings.maxQueueMessages,
      maxBytes: settings.maxQueueBytes,
    });
  }

  async open(handler: LinkHandler): Promise<LinkWelcome> {
    this.#handler = handler;
    const writer = this.#writer;
    const hello: Hello = { k: Kind.Hello, v: PROTOCOL_VERSION, ...this.#settings.hello };
    writer.push(encodeMessage(hello));
    const reader = this.#conn.readable.getReader();
    const parser = new FrameParser(this.#settings.maxFrameBytes);
    const timeout = this.#settings.timeout;
    const first = await withTimeout(
      this.#readWelcome(reader, parser),
      timeout,
      () => `No answer to the handshake within ${timeout} ms`,
    ).catch(async (err) => {
      writer.abort();
      await this.#conn.close();
      throw err;
    });
    this.#id = first.id;
    writer.onWritten = undefined;
    writer.onError = () => void this.#conn.close();
    const welcome = { id: first.id, peers: first.peers, ...(first.host === undefined ? {} : { host: first.host }) };
    handler.welcome(welcome);
    void this.#readLoop(reader, parser, first.rest);
    return welcome;
  }

  async #readWelcome(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    parser: FrameParser,
  ): Promise<{ id: number; host: number | undefined; peers: PeerInfo[]; rest: Uint8Array[] }> {
    const frames: Uint8Array[] = [];
    while (frames.length === 0) {
      const { value, done } = await reader.read();
      if (done) throw new ConnectError("The hub closed the connection during the handshake");
      parser.push(value, (body) => frames.push(body.slice()));
    }
    const m = asEnvelope(decodeEnvelope(frames[0]));
    if (m.k === Kind.Refuse || m.k === Kind.Error) {
      const e = asErrorRecord(m.e);
      throw errorFromCode(e.code ?? "ipc_error", e.message);
    }
    if (m.k !== Kind.Welcome || !Number.isSafeInteger(m.id) || !Array.isArray(m.peers)) {
      throw new ConnectError(`Unexpected answer to the handshake: ${String(m.k)}`);
    }
    const w = asWelcome(m);
    return { id: w.id, host: w.host, peers: w.peers, rest: frames.slice(1) };
  }

  async #readLoop(reader: ReadableStreamDefaultReader<Uint8Array>, parser: FrameParser, rest: Uint8Array[]) {
    let reason = "hub closed the connection";
    const onFrame = (body: Uint8Array) => this.#onFrame(body);
    try {
      if (rest.length > 0) {
        // Frames that came in the same chunk as the welcome wait a macrotask,
        // so the caller of connect() can register handlers for them first.
        await new Promise((resolve) => setTimeout(resolve, 0));
        for (const body of rest) onFrame(body);
      }
      while (!this.#done) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value, onFrame);
      }
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
      if (err instanceof IpcError) this.#handler!.error(err);
    }
    if (!this.#done) {
      await this.#conn.close();
      this.#end();
      this.#handler!.lost(reason);
    }
  }

  #onFrame(body: Uint8Array): void {
    const h = this.#handler!;
    const fast = readEnvelope(body);
    if (fast) {
      if (fast.k === "a") return h.alert(fast.f, fast.t, fast.n!, fast.d!, fast.s);
      if (fast.k === "q") return h.request(fast.f, fast.r!, fast.u!, fast.d!);
      return h.answer(fast.r!, { data: fast.d! });
    }
    const m = asEnvelope(decodeEnvelope(body));
    switch (m.k) {
      case Kind.Alert: {
        const a = asAlert(m);
        return h.alert(a.f, a.t, a.n, a.d, a.s);
      }
      case Kind.Request: {
        const q = asRequest(m);
        return h.request(q.f, q.r, q.u, q.d);
      }
      case Kind.Response:
      case Kind.ErrorResponse: {
        const r = asReply(m);
        return h.answer(r.r, r.k === Kind.Response ? { data: r.d } : { error: r.e });
      }
      case Kind.Join:
        return h.join(asJoin(m).peer);
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
        if (detail.reason === "queue_full" && detail.to !== undefined) this.#busy.add(detail.to);
        return h.undeliverable(detail, u.s !== undefined);
      }
      case Kind.Busy:
        this.#busy.add(asBusyOrRoom(m).id);
        return;
      case Kind.Room: {
        const { id } = asBusyOrRoom(m);
        this.#busy.delete(id);
        h.room(id);
        if (this.#busy.size === 0) this.#wake();
        return;
      }
      case Kind.Error:
        return h.error(
          errorFromCode(String((m.e as ErrorRecord)?.code ?? "ipc_error"), String((m.e as ErrorRecord)?.message)),
        );
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
    if (this.#busy.size === 0) this.#wake();
  }

  #wake(): void {
    for (const wake of this.#roomWaiters.splice(0)) wake();
  }

  #end(): void {
    this.#done = true;
    void this.#conn.close();
    this.#busy.clear();
    this.#wake();
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

  alert(to: number | undefined, name: string, data: Uint8Array, seq?: Sequence): void {
    if (seq !== undefined) {
      // Kept by the delivery policy until acknowledged and resent on the next
      // link, so a full queue only delays them: never refused here.
      this.#writer.push(
        encodeMessage(
          to === undefined
            ? { k: Kind.Alert, f: this.#id, n: name, d: data, s: seq }
            : { k: Kind.Alert, f: this.#id, t: to, n: name, d: data, s: seq },
        ),
      );
      return;
    }
    this.#pushFast("a", [["f", this.#id], ["t", to], ["n", name], ["d", data]], name, false);
  }

  request(m: { id: number; to: number | undefined; route: string; data: Uint8Array; timeout: number }): void {
    this.#pushFast(
      "q",
      [["f", this.#id], ["t", m.to], ["r", m.id], ["u", m.route], ["w", Math.min(Math.ceil(m.timeout), MAX_WAIT_MS)], [
        "d",
        m.data,
      ]],
      m.route,
      true,
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

  /** Queues an alert or request envelope written in place (see fast_envelope.ts), within the limits. */
  #pushFast(kind: "a" | "q", fields: EnvelopeFields, what: string, isRequest: boolean): void {
    const size = envelopeBytes(fields);
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
    writeEnvelope(writer, kind, fields);
  }
}
