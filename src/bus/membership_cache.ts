import { decodeEnvelope, decodeEnvelopeItem } from "../codec/cbor.ts";
import { cborHeadArgument, cborHeadEnd, MAX_CBOR_DEPTH } from "../codec/cbor_scan.ts";
import { copyBytes } from "../util/copy_bytes.ts";
import { type asEnvelope, asJoin, asMembers, Kind, type MemberChange } from "./protocol.ts";

/**
 * The last `join` or `members` frame this process decoded, and its changes.
 * The hub sends the same frame to every peer, so a process that runs many
 * peers (a test, a benchmark, a supervisor with a peer per worker) reads the
 * same bytes once per peer: 1 000 peers in one process joining one after
 * another decoded 500 000 peer records. A frame equal to the last one is
 * answered from here. The changes and their `PeerInfo` records are frozen
 * and shared by every peer of the process: no peer can change what another
 * sees, and none pays for a copy.
 */
let lastFrame: Uint8Array | undefined;
let lastChanges: readonly MemberChange[] | undefined;

/** The (frozen) changes of `body` if it is the frame decoded last; else undefined. */
export function cachedMembership(body: Uint8Array): readonly MemberChange[] | undefined {
  const last = lastFrame;
  if (!last || last.byteLength !== body.byteLength || sameBytesAt(body, 0, body.byteLength, last) !== body.byteLength) {
    return undefined;
  }
  return lastChanges;
}

/** The changes of decoded `join` or `members` envelope `m`, frozen and remembered with its bytes for {@linkcode cachedMembership}. */
export function membershipOf(m: ReturnType<typeof asEnvelope>, body: Uint8Array): readonly MemberChange[] {
  const changes: MemberChange[] = m.k === Kind.Join ? [{ join: asJoin(m).peer }] : asMembers(m).changes;
  for (const change of changes) {
    if ("join" in change) Object.freeze(change.join);
    Object.freeze(change);
  }
  lastFrame = copyBytes(body);
  lastChanges = Object.freeze(changes);
  return lastChanges;
}

/**
 * The peer records of the last `welcome` this process decoded: their bytes,
 * one after another as the frame held them, where each one ends in those
 * bytes, and what each decoded to. Bounded by the size of that welcome.
 */
let lastWelcome: { bytes: Uint8Array; ends: number[]; infos: unknown[] } = {
  bytes: new Uint8Array(0),
  ends: [],
  infos: [],
};

/**
 * Decodes a `welcome` frame as `decodeEnvelope` does, but the records at
 * the start of its `peers` list that repeat, byte for byte, those of the
 * last welcome this process decoded are taken from there (the same frozen
 * `PeerInfo`s), found with one comparison of their bytes and neither
 * scanned nor decoded again. A newcomer's welcome lists every peer, and the
 * hub lists them in join order, so each welcome repeats the previous one's
 * records and adds the newcomers': N peers joining one after another in one
 * process (a test, a benchmark, a supervisor with a peer per worker) would
 * otherwise scan and decode N²/2 records, 500 000 for 1 000 peers. A frame in
 * any other shape (an indefinite-length map, `peers` not an array) is
 * decoded whole.
 *
 * @throws {ProtocolError} as `decodeEnvelope` does, for malformed CBOR.
 */
export function decodeWelcome(frame: Uint8Array): unknown {
  const end = frame.byteLength;
  const entries = end > 0 && frame[0] >= 0xa0 && frame[0] <= 0xbb ? cborHeadArgument(frame, 0) : -1;
  if (entries < 0 || cborHeadEnd() > end) return decodeEnvelope(frame);
  const m: Record<string, unknown> = {};
  let at = cborHeadEnd();
  for (let i = 0; i < entries; i++) {
    // Each key and value is checked as decodeEnvelope checks a whole frame, one level down.
    const { value: key, end: keyEnd } = decodeEnvelopeItem(frame, at, MAX_CBOR_DEPTH - 1);
    // Keys that are not plain strings, or that an object literal treats apart, are left to cbor-x.
    if (typeof key !== "string" || key === "__proto__") return decodeEnvelope(frame);
    const list = key === "peers" && keyEnd < end && frame[keyEnd] >> 5 === 4 ? cborHeadArgument(frame, keyEnd) : -1;
    if (list >= 0 && cborHeadEnd() <= end) {
      const peers: unknown[] = [];
      at = readPeers(frame, cborHeadEnd(), end, list, peers);
      m[key] = peers;
    } else {
      const item = decodeEnvelopeItem(frame, keyEnd, MAX_CBOR_DEPTH - 1);
      m[key] = item.value;
      at = item.end;
    }
  }
  // Bytes after the map: refused as decodeEnvelope refuses them.
  return at === end ? m : decodeEnvelope(frame);
}

/**
 * Reads the `count` records of a welcome's `peers` list that starts at
 * `from` into `peers`, and returns where the list ends; remembers them for
 * the next welcome.
 */
function readPeers(frame: Uint8Array, from: number, end: number, count: number, peers: unknown[]): number {
  const known = lastWelcome;
  // CBOR items are prefix-free: bytes equal to the known records, from the
  // first to the r-th, are those records, each to its end.
  const same = sameBytesAt(frame, from, end, known.bytes);
  let r = 0;
  while (r < count && r < known.ends.length && known.ends[r] <= same) peers.push(known.infos[r++]);
  const ends = known.ends.slice(0, r);
  let p = from + (r > 0 ? ends[r - 1] : 0);
  for (; r < count; r++) {
    const { value: info, end: recordEnd } = decodeEnvelopeItem(frame, p, MAX_CBOR_DEPTH - 2);
    // Records are shared by the peers of the process, so frozen; a byte string cannot be (and fails `asWelcome`).
    peers.push(typeof info === "object" && info !== null && !ArrayBuffer.isView(info) ? Object.freeze(info) : info);
    p = recordEnd;
    ends.push(p - from);
  }
  // A copy of the list: the caller's may be changed, the records are frozen.
  lastWelcome = { bytes: copyBytes(frame.subarray(from, p)), ends, infos: peers.slice() };
  return p;
}

/** Comparisons at least this long go by words: below it, making the two `DataView`s costs more than it saves. */
const WORDS_FROM = 256;

/** How many bytes of `frame` from `at`, before `limit`, are equal to those at the start of `bytes`. */
function sameBytesAt(frame: Uint8Array, at: number, limit: number, bytes: Uint8Array): number {
  const n = Math.min(bytes.byteLength, limit - at);
  let i = 0;
  if (n >= WORDS_FROM) {
    // Eight bytes a step: a welcome of 1 000 peers is 63 KiB, compared 3–4 times faster than byte by byte.
    const f = new DataView(frame.buffer, frame.byteOffset + at, n);
    const b = new DataView(bytes.buffer, bytes.byteOffset, n);
    for (const last = n - 8; i <= last; i += 8) {
      if (f.getInt32(i) !== b.getInt32(i) || f.getInt32(i + 4) !== b.getInt32(i + 4)) break;
    }
  }
  while (i < n && frame[at + i] === bytes[i]) i++;
  return i;
}
