import { decodeEnvelope } from "../codec/cbor.ts";
import { cborHeadArgument, cborHeadEnd, cborItemEnd, scanCbor } from "../codec/cbor_scan.ts";
import { copyBytes } from "../util/copy_bytes.ts";
import { type asEnvelope, asJoin, asMembers, Kind, type MemberChange, type PeerInfo } from "./protocol.ts";

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
  if (!last || last.byteLength !== body.byteLength || !bytesAt(body, 0, body.byteLength, last)) return undefined;
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
 * The peer records of the last `welcome` this process decoded: each one's
 * bytes and what they decoded to. Bounded by the size of that welcome.
 */
let lastWelcome: Array<{ bytes: Uint8Array; info: PeerInfo }> = [];

/**
 * Decodes a `welcome` frame as `decodeEnvelope` does, but each record of
 * its `peers` list that has the same bytes at the same place in the last
 * welcome this process decoded is taken from there (the same frozen
 * `PeerInfo`) rather than decoded again. A newcomer's welcome lists every peer, so N peers joining
 * one after another in one process decoded N²/2 records, 500 000 for 1 000
 * peers (most of the client's time in `bench/hub_scale.ts`); the hub lists
 * them in join order, so each welcome repeats the previous one's records
 * and adds the newcomers'. A frame in any other shape (an indefinite-length
 * item, `peers` not an array) is decoded whole.
 *
 * @throws {ProtocolError} as `decodeEnvelope` does, for malformed CBOR.
 */
export function decodeWelcome(frame: Uint8Array): unknown {
  scanCbor(frame);
  const entries = frame[0] >= 0xa0 && frame[0] <= 0xbb ? cborHeadArgument(frame, 0) : -1;
  if (entries < 0) return decodeEnvelope(frame);
  const m: Record<string, unknown> = {};
  const records: Array<{ bytes: Uint8Array; info: PeerInfo }> = [];
  let at = cborHeadEnd();
  for (let i = 0; i < entries; i++) {
    const keyEnd = cborItemEnd(frame, at);
    const valueEnd = keyEnd < 0 ? -1 : cborItemEnd(frame, keyEnd);
    if (valueEnd < 0) return decodeEnvelope(frame);
    const key = String(decodeEnvelope(frame.subarray(at, keyEnd)));
    const list = key === "peers" && frame[keyEnd] >> 5 === 4 ? cborHeadArgument(frame, keyEnd) : -1;
    if (list >= 0) {
      const peers: unknown[] = [];
      let p = cborHeadEnd();
      for (let r = 0; r < list; r++) {
        const known = lastWelcome[r];
        // CBOR items are prefix-free: bytes at `p` equal to a whole known record are that record, to its end.
        if (known && bytesAt(frame, p, valueEnd, known.bytes)) {
          records.push(known);
          peers.push(known.info);
          p += known.bytes.byteLength;
          continue;
        }
        const end = cborItemEnd(frame, p);
        const bytes = frame.subarray(p, end);
        const info = decodeEnvelope(bytes) as PeerInfo;
        peers.push(info);
        if (info !== null && typeof info === "object") {
          records.push({ bytes: copyBytes(bytes), info: Object.freeze(info) });
        }
        p = end;
      }
      m[key] = peers;
    } else m[key] = decodeEnvelope(frame.subarray(keyEnd, valueEnd));
    at = valueEnd;
  }
  lastWelcome = records;
  return m;
}

/** Whether `frame` holds `bytes` at `at`, before `limit`. */
function bytesAt(frame: Uint8Array, at: number, limit: number, bytes: Uint8Array): boolean {
  const n = bytes.byteLength;
  if (at + n > limit) return false;
  for (let i = 0; i < n; i++) if (frame[at + i] !== bytes[i]) return false;
  return true;
}
