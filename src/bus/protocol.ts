/**
 * The envelope of every message between a peer and the hub. PROTOCOL.md is
 * the prose version of this file; keep the two in step.
 *
 * @module
 */
import { encodeCbor } from "../codec/cbor.ts";
import { type IpcError, ProtocolError, RemoteError } from "../errors.ts";
import { errorFromCode } from "../error_from_code.ts";
import { asHeaders, type MessageHeaders } from "./headers.ts";
import { compileRoutes, type RouteMatcher } from "./route_pattern.ts";

/** Version of the message protocol spoken by this build. */
export const PROTOCOL_VERSION = 1;

/** The `k` field of every envelope. */
export const Kind = {
  Hello: "hello",
  Welcome: "welcome",
  Refuse: "refuse",
  Join: "join",
  Members: "members",
  Leave: "leave",
  Alert: "a",
  Request: "q",
  Response: "p",
  ErrorResponse: "x",
  Handle: "handle",
  Undeliverable: "undeliverable",
  Busy: "busy",
  Room: "room",
  Ack: "ack",
  Error: "error",
  Close: "close",
  Bye: "bye",
} as const;

/** One of the values of {@linkcode Kind}. */
export type Kind = typeof Kind[keyof typeof Kind];

/**
 * A peer as the hub announces it. The records a peer hands out (`peers()`,
 * `peerjoin`) may be shared by every peer of the process and are then
 * frozen: copy one (`{ ...info }`) to change it.
 */
export interface PeerInfo {
  /** Peer id: 0 is the hub's own peer, connected peers get 1, 2, 3, … */
  id: number;
  /** The name given at connect, unique among live peers. */
  name?: string;
  /** OS process id. */
  pid: number;
  /** `"deno"`, `"bun"`, or what a foreign client announces. */
  runtime: string;
  /** When the peer joined, in ms since the epoch. */
  since: number;
  /** Random id of the peer's process instance: a restart with the same id has a new one. */
  inc?: string;
}

/** An error as it travels: rebuilt on the receiving side. */
export interface ErrorRecord {
  name: string;
  message: string;
  code?: string;
  /** True when the bus raised it (no handler, peer left …), absent when a handler threw. */
  sys?: boolean;
}

/** A `handle()` pattern as it travels to the hub. */
export type PatternRecord = { exact: string } | { prefix: string } | { regexp: { source: string; flags: string } };

/** Peer → hub, first frame. */
export interface Hello {
  k: typeof Kind.Hello;
  v: number;
  pid: number;
  runtime: string;
  name?: string;
  id?: number;
  token?: string;
  dropOldest?: boolean;
  inc?: string;
}

/** Hub → peer, answer to a hello. */
export interface Welcome {
  k: typeof Kind.Welcome;
  v: number;
  id: number;
  /** Id of the peer hosting the hub: 0, or the channel member that runs it. */
  host?: number;
  peers: PeerInfo[];
}

/** Hub → peer, instead of a welcome: the handshake failed. */
export interface Refuse {
  k: typeof Kind.Refuse;
  e: ErrorRecord;
}

/** Hub → peers: a peer joined. */
export interface Join {
  k: typeof Kind.Join;
  peer: PeerInfo;
}

/** Hub → peers: peer `id` left. */
export interface Leave {
  k: typeof Kind.Leave;
  id: number;
  reason: string;
}

/** One change of a {@linkcode Members} message: a join or a leave. */
export type MemberChange = { join: PeerInfo } | { leave: number; reason: string };

/** Hub → peers: joins and leaves batched on a large bus, in the order they happened. */
export interface Members {
  k: typeof Kind.Members;
  changes: MemberChange[];
}

/** Peer → hub: the route patterns it serves (replaces the previous list). */
export interface Handle {
  k: typeof Kind.Handle;
  patterns: PatternRecord[];
}

/** Hub → sender: alert `n` did not reach `t` (absent: a broadcast). */
export interface Undeliverable {
  k: typeof Kind.Undeliverable;
  n: string;
  reason: string;
  t?: number;
  s?: number | Record<string, number>;
  /** The alerts were broadcasts refused for `t` alone: they make nobody busy. */
  b?: boolean;
  /** How many alerts the report stands for (absent: 1). */
  c?: number;
}

/** Hub → sender: peer `id`'s queue is past its high-water mark. */
export interface Busy {
  k: typeof Kind.Busy;
  id: number;
}

/** Hub → sender: peer `id`'s queue has room again. */
export interface Room {
  k: typeof Kind.Room;
  id: number;
}

/** Hub → peer: a protocol error (the hub hangs up after it when the peer broke the protocol). */
export interface ErrorMessage {
  k: typeof Kind.Error;
  e: ErrorRecord | { name: string; message: string; code: string };
}

/** Hub → peers: the hub is closing; no new messages. */
export interface Close {
  k: typeof Kind.Close;
  reason?: string;
}

/** Peer → hub: a graceful leave. */
export interface Bye {
  k: typeof Kind.Bye;
}

/** An alert; `t` absent means broadcast. `s` is the sender's sequence number in reliable mode. */
export interface Alert {
  k: typeof Kind.Alert;
  f: number;
  t?: number;
  n: string;
  d: Uint8Array;
  s?: number | Record<string, number>;
  /** Headers, if any (see headers.ts). */
  h?: MessageHeaders;
}

/** A request; `t` absent lets the hub choose the responder. */
export interface Request {
  k: typeof Kind.Request;
  f: number;
  t?: number;
  r: number;
  u: string;
  d: Uint8Array;
  /** The requester's timeout in ms: the hub forgets the request a little after it. */
  w?: number;
  /** Headers, if any (see headers.ts). */
  h?: MessageHeaders;
}

/** A response to request `r` of peer `t`. */
export interface Response {
  k: typeof Kind.Response;
  f: number;
  t: number;
  r: number;
  d: Uint8Array;
  /** Headers, if any (see headers.ts). */
  h?: MessageHeaders;
}

/** An error response to request `r` of peer `t`. */
export interface ErrorResponse {
  k: typeof Kind.ErrorResponse;
  f: number;
  t: number;
  r: number;
  e: ErrorRecord;
}

/** Every message of the protocol, by its `k`. */
export type Message =
  | Hello
  | Welcome
  | Refuse
  | Join
  | Leave
  | Members
  | Alert
  | Request
  | Response
  | ErrorResponse
  | Handle
  | Undeliverable
  | Busy
  | Room
  | AckMessage
  | ErrorMessage
  | Close
  | Bye;

/**
 * Encodes one message as a frame body. Alerts, requests and responses on
 * the hot path are written in place by `fast_envelope.ts` instead; both give
 * the same CBOR map.
 */
export function encodeMessage(m: Message): Uint8Array {
  return encodeCbor(m);
}

type Envelope = Record<string, unknown> & { k: string };

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;
const isId = (v: unknown): v is number => isInt(v) && (v as number) >= 0;

/**
 * `text` cut to at most `max` UTF-16 units, never inside a surrogate pair
 * (which would show as U+FFFD once encoded).
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

function bad(kind: string, field: string, value: unknown): never {
  // A bigint field (a CBOR bignum or 64-bit integer) made JSON.stringify throw a TypeError here, so the
  // hub hung up without the error frame (found by tests/fuzz/).
  const json = (v: unknown) => JSON.stringify(v, (_, x) => typeof x === "bigint" ? `${x}n` : x) ?? String(v);
  const shown = value instanceof Uint8Array ? `${value.byteLength} bytes` : json(value);
  throw new ProtocolError(`Invalid ${kind} message: field ${field} is ${clip(shown, 80)}`);
}

/**
 * Checks the outer shape every envelope has, and reads its fields as other
 * languages' CBOR libraries write them: a field whose value is `null` counts
 * as absent (no field may be null), e.g. a broadcast's `t`; an integer with
 * the 8-byte head (a bigint here, as Python's cbor2 writes 2³² and above) is
 * a number when it is a safe integer.
 */
export function asEnvelope(value: unknown): Envelope {
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) {
    throw new ProtocolError(
      `Invalid message: expected a CBOR map, got ${Array.isArray(value) ? "array" : typeof value}`,
    );
  }
  const m = value as Envelope;
  for (const key in m) {
    const value = m[key];
    if (value === null) delete m[key];
    else if (typeof value === "bigint" && value >= MIN_SAFE && value <= MAX_SAFE) m[key] = Number(value);
  }
  if (typeof m.k !== "string") bad("message", "k", m.k);
  return m;
}

/** Validates a hello. */
export function asHello(m: Envelope): Hello {
  if (!isInt(m.v)) bad("hello", "v", m.v);
  if (!isInt(m.pid)) bad("hello", "pid", m.pid);
  if (typeof m.runtime !== "string") bad("hello", "runtime", m.runtime);
  if (m.name !== undefined && (typeof m.name !== "string" || m.name.length === 0 || m.name.length > 256)) {
    bad("hello", "name", m.name);
  }
  if (m.id !== undefined && (!isId(m.id) || m.id === 0)) bad("hello", "id", m.id);
  if (m.token !== undefined && typeof m.token !== "string") bad("hello", "token", "(not a string)");
  if (m.dropOldest !== undefined && typeof m.dropOldest !== "boolean") bad("hello", "dropOldest", m.dropOldest);
  if (m.inc !== undefined && (typeof m.inc !== "string" || m.inc.length > 64)) bad("hello", "inc", m.inc);
  return m as unknown as Hello;
}

/** Validates an alert. */
export function asAlert(m: Envelope): Alert {
  if (!isId(m.f)) bad("alert", "f", m.f);
  if (m.t !== undefined && !isId(m.t)) bad("alert", "t", m.t);
  if (typeof m.n !== "string") bad("alert", "n", m.n);
  if (!(m.d instanceof Uint8Array)) bad("alert", "d", m.d);
  if (m.s !== undefined && !isInt(m.s) && (m.s === null || typeof m.s !== "object" || Array.isArray(m.s))) {
    bad("alert", "s", m.s);
  }
  if (m.h !== undefined) asHeaders(m.h, "alert");
  return m as unknown as Alert;
}

/** An acknowledgement of reliably delivered alerts (channels), relayed by the hub to peer `t`. */
export interface AckMessage {
  k: typeof Kind.Ack;
  f: number;
  t: number;
  s: number;
  g?: boolean;
  skip?: boolean;
}

/** Validates an ack. */
export function asAck(m: Envelope): AckMessage {
  if (!isId(m.f)) bad("ack", "f", m.f);
  if (!isId(m.t)) bad("ack", "t", m.t);
  if (!isInt(m.s)) bad("ack", "s", m.s);
  return m as unknown as AckMessage;
}

/** Validates a peer as the hub announces it. */
export function asPeerInfo(p: unknown, kind: string): PeerInfo {
  const r = p as Record<string, unknown>;
  if (r === null || typeof r !== "object" || !isId(r.id) || !isInt(r.pid) || typeof r.runtime !== "string") {
    bad(kind, "peer", p);
  }
  if (r.name !== undefined && typeof r.name !== "string") bad(kind, "peer.name", r.name);
  if (r.inc !== undefined && typeof r.inc !== "string") bad(kind, "peer.inc", r.inc);
  return r as unknown as PeerInfo;
}

/** Validates a welcome. */
export function asWelcome(m: Envelope): Welcome {
  if (!isId(m.id)) bad("welcome", "id", m.id);
  if (m.host !== undefined && !isId(m.host)) bad("welcome", "host", m.host);
  if (!Array.isArray(m.peers)) bad("welcome", "peers", m.peers);
  for (const p of m.peers as unknown[]) asPeerInfo(p, "welcome");
  return m as unknown as Welcome;
}

/** Validates a join. */
export function asJoin(m: Envelope): Join {
  asPeerInfo(m.peer, "join");
  return m as unknown as Join;
}

/** Validates a leave. */
export function asLeave(m: Envelope): Leave {
  if (!isId(m.id)) bad("leave", "id", m.id);
  if (m.reason !== undefined && typeof m.reason !== "string") bad("leave", "reason", m.reason);
  return m as unknown as Leave;
}

/** Validates a members message. */
export function asMembers(m: Envelope): Members {
  if (!Array.isArray(m.changes)) bad("members", "changes", m.changes);
  for (const change of m.changes as Array<Record<string, unknown>>) {
    if (change?.join !== undefined) asPeerInfo(change.join, "members");
    else if (!isId(change?.leave)) bad("members", "changes", change);
    else if (typeof change.reason !== "string") bad("members", "reason", change.reason);
  }
  return m as unknown as Members;
}

/** Validates a busy or room message. */
export function asBusyOrRoom(m: Envelope): Busy | Room {
  if (!isId(m.id)) bad(m.k, "id", m.id);
  return m as unknown as Busy | Room;
}

/** Validates an undeliverable report. */
export function asUndeliverable(m: Envelope): Undeliverable {
  if (typeof m.reason !== "string") bad("undeliverable", "reason", m.reason);
  if (m.t !== undefined && !isId(m.t)) bad("undeliverable", "t", m.t);
  if (m.n !== undefined && typeof m.n !== "string") bad("undeliverable", "n", m.n);
  if (m.b !== undefined && typeof m.b !== "boolean") bad("undeliverable", "b", m.b);
  if (m.c !== undefined && !isId(m.c)) bad("undeliverable", "c", m.c);
  return m as unknown as Undeliverable;
}

/** Validates a request. */
export function asRequest(m: Envelope): Request {
  if (!isId(m.f)) bad("request", "f", m.f);
  if (m.t !== undefined && !isId(m.t)) bad("request", "t", m.t);
  if (!isInt(m.r)) bad("request", "r", m.r);
  if (typeof m.u !== "string") bad("request", "u", m.u);
  if (!(m.d instanceof Uint8Array)) bad("request", "d", m.d);
  if (m.w !== undefined && (!isInt(m.w) || (m.w as number) < 0)) bad("request", "w", m.w);
  if (m.h !== undefined) asHeaders(m.h, "request");
  return m as unknown as Request;
}

/** Validates a response or an error response. */
export function asReply(m: Envelope): Response | ErrorResponse {
  if (!isId(m.f)) bad("response", "f", m.f);
  if (!isId(m.t)) bad("response", "t", m.t);
  if (!isInt(m.r)) bad("response", "r", m.r);
  if (m.k === Kind.Response) {
    if (!(m.d instanceof Uint8Array)) bad("response", "d", m.d);
    if (m.h !== undefined) asHeaders(m.h, "response");
  } else asErrorRecord(m.e);
  return m as unknown as Response | ErrorResponse;
}

/** Validates an error record. */
export function asErrorRecord(e: unknown): ErrorRecord {
  const r = e as ErrorRecord;
  if (r === null || typeof r !== "object" || typeof r.name !== "string" || typeof r.message !== "string") {
    bad("error", "e", e);
  }
  if (r.code !== undefined && typeof r.code !== "string") bad("error", "e.code", r.code);
  if (r.sys !== undefined && typeof r.sys !== "boolean") bad("error", "e.sys", r.sys);
  return r;
}

const PATTERN_KINDS = ["exact", "prefix", "regexp"] as const;

/** Validates the shape of a handle message's pattern list; {@linkcode compileReceivedRoutes} compiles it. */
export function asPatterns(m: Envelope): PatternRecord[] {
  const list = m.patterns;
  if (!Array.isArray(list) || list.length > 10_000) bad("handle", "patterns", list);
  for (const p of list as PatternRecord[]) {
    const ok = p !== null && typeof p === "object" && (
      typeof (p as { exact?: unknown }).exact === "string" ||
      typeof (p as { prefix?: unknown }).prefix === "string" ||
      (typeof (p as { regexp?: { source?: unknown } }).regexp?.source === "string" &&
        typeof (p as { regexp?: { flags?: unknown } }).regexp?.flags === "string")
    );
    if (!ok) bad("handle", "patterns[]", p);
    const kinds = PATTERN_KINDS.filter((key) => (p as Record<string, unknown>)[key] !== undefined);
    if (kinds.length !== 1) {
      throw new ProtocolError(
        `Invalid handle message: a pattern has exactly one of exact, prefix, regexp; got ${kinds.join(" and ")}`,
      );
    }
  }
  return list as PatternRecord[];
}

/**
 * Compiles a peer's pattern list as received (see {@linkcode asPatterns}):
 * a `regexp` must compile, run in linear time, and fit the peer's budget
 * (`route_pattern.ts`).
 *
 * @throws {ProtocolError} for a list that breaks one of those rules.
 */
export function compileReceivedRoutes(patterns: readonly PatternRecord[]): RouteMatcher[] {
  try {
    return compileRoutes(patterns);
  } catch (err) {
    throw new ProtocolError(`Invalid handle message: ${(err as Error).message}`);
  }
}

/** Turns any thrown value into an error record. */
export function toErrorRecord(err: unknown): ErrorRecord {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === "string" ? { code } : {}) };
  }
  return { name: "Error", message: String(err) };
}

/** The record of the error told to a peer that broke the protocol, before the hub hangs up. */
export function wireError(err: IpcError): { name: string; message: string; code: string } {
  return { name: err.name, message: err.message, code: err.code };
}

/** The record of an error the bus itself raised, rebuilt with its class on the other side. */
export function systemError(err: { name: string; message: string; code: string }): ErrorRecord {
  return { name: err.name, message: err.message, code: err.code, sys: true };
}

/** Rebuilds an error from its record: errors the bus raised (`sys`) keep their class, a handler's become `RemoteError`. */
export function fromErrorRecord(e: ErrorRecord): IpcError {
  if (e.sys) return errorFromCode(e.code ?? "ipc_error", e.message);
  return new RemoteError(e.message, { remoteName: e.name, ...(e.code === undefined ? {} : { remoteCode: e.code }) });
}
