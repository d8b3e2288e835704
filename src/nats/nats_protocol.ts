/**
 * What the NATS bus puts on NATS besides PROTOCOL.md's alert, request and
 * response envelopes: the subjects of one bus, the presence messages and the
 * records of the id leases. PROTOCOL.md's "NATS" section is the prose version
 * of this file; keep the two in step.
 *
 * @module
 */
import { decodeEnvelope, encodeCbor } from "../codec/cbor.ts";
import { ProtocolError } from "../errors.ts";
import { asEnvelope, asPatterns, Kind, type PatternRecord, type PeerInfo } from "../bus/protocol.ts";

/** The bus name when none is given. */
export const DEFAULT_BUS = "ipcbus";

/** Bus names: one NATS subject token, and part of a JetStream bucket name. */
const BUS_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The subjects and the KV bucket of one bus. */
export interface BusSubjects {
  /** Alerts, requests and answers for peer `id`. */
  inbox(id: number): string;
  /** The reply subject of peer `id`'s directed message number `n`: the server's 503 status comes back on it. */
  returned(id: number, n: number | "*"): string;
  /** Broadcast alerts. */
  readonly all: string;
  /** Presence messages. */
  readonly presence: string;
  /** The JetStream KV bucket of the id and name leases. */
  readonly bucket: string;
}

/**
 * The subjects of bus `bus`: everything under `ipcbus.<bus>.`, so buses with
 * different names never see each other's traffic.
 *
 * @throws {TypeError} for a name that is not 1–64 of `A-Z a-z 0-9 _ -`.
 */
export function busSubjects(bus: string): BusSubjects {
  if (typeof bus !== "string" || !BUS_NAME.test(bus)) {
    throw new TypeError(`Invalid bus name: expected 1-64 of A-Z a-z 0-9 _ -, got ${JSON.stringify(bus)}`);
  }
  const prefix = `ipcbus.${bus}`;
  return {
    inbox: (id) => `${prefix}.p.${id}`,
    returned: (id, n) => `${prefix}.p.${id}.r.${n}`,
    all: `${prefix}.all`,
    presence: `${prefix}.presence`,
    bucket: `ipcbus_${bus}`,
  };
}

/** The `k` of presence messages. */
export const PresenceKind = {
  Here: "here",
  Leave: Kind.Leave,
} as const;

/** A peer's heartbeat: who it is, what it serves; `q` asks every other peer to answer at once. */
export interface Here {
  k: typeof PresenceKind.Here;
  peer: PeerInfo;
  /** The routes it serves, as PROTOCOL.md's handle message carries them. */
  patterns: PatternRecord[];
  /** Counts the peer's connections to NATS: a change means it was away and may have lost messages. */
  c: number;
  q?: boolean;
}

/** A peer leaving on purpose. */
export interface Leave {
  k: typeof PresenceKind.Leave;
  id: number;
  inc: string;
}

/** One of the presence messages. */
export type PresenceMessage = Here | Leave;

/** Encodes a presence message. */
export function encodePresence(m: PresenceMessage): Uint8Array {
  return encodeCbor(m);
}

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

function bad(field: string, value: unknown): never {
  throw new ProtocolError(`Invalid presence message: field ${field} is ${String(value).slice(0, 80)}`);
}

/** Checks the fields of a peer record as presence and leases carry it. */
export function asPeerInfo(p: unknown): PeerInfo {
  const info = p as PeerInfo;
  if (info === null || typeof info !== "object") bad("peer", p);
  if (!isId(info.id)) bad("peer.id", info.id);
  if (!Number.isSafeInteger(info.pid)) bad("peer.pid", info.pid);
  if (typeof info.runtime !== "string") bad("peer.runtime", info.runtime);
  if (!Number.isFinite(info.since)) bad("peer.since", info.since);
  if (info.name !== undefined && typeof info.name !== "string") bad("peer.name", info.name);
  if (typeof info.inc !== "string") bad("peer.inc", info.inc);
  return info;
}

/**
 * Decodes a presence message.
 *
 * @throws {ProtocolError} for bytes that are not one.
 */
export function decodePresence(bytes: Uint8Array): PresenceMessage {
  const m = asEnvelope(decodeEnvelope(bytes));
  if (m.k === PresenceKind.Here) {
    asPeerInfo(m.peer);
    asPatterns(m);
    if (!Number.isSafeInteger(m.c)) bad("c", m.c);
    return m as unknown as Here;
  }
  if (m.k === PresenceKind.Leave) {
    if (!isId(m.id)) bad("id", m.id);
    if (typeof m.inc !== "string") bad("inc", m.inc);
    return m as unknown as Leave;
  }
  return bad("k", m.k);
}
