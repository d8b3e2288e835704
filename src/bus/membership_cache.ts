import { copyBytes } from "../util/copy_bytes.ts";
import { type asEnvelope, asJoin, asMembers, Kind, type MemberChange } from "./protocol.ts";

/**
 * The last `join` or `members` frame this process decoded, and its changes.
 * The hub sends the same frame to every peer, so a process that runs many
 * peers (a test, a benchmark, a supervisor with a peer per worker) reads the
 * same bytes once per peer: 1 000 peers in one process joining one after
 * another decoded 500 000 peer records. A frame equal to the last one is
 * answered from here; each peer still gets records of its own (copies), so
 * no peer sees another's objects.
 */
let lastFrame: Uint8Array | undefined;
let lastChanges: MemberChange[] | undefined;

/** The changes of `body` if it is the frame decoded last, as fresh copies; else undefined. */
export function cachedMembership(body: Uint8Array): MemberChange[] | undefined {
  const last = lastFrame;
  if (!last || last.byteLength !== body.byteLength) return undefined;
  for (let i = 0; i < body.byteLength; i++) if (body[i] !== last[i]) return undefined;
  return lastChanges!.map((c) => ("join" in c ? { join: { ...c.join } } : { ...c }));
}

/** The changes of decoded `join` or `members` envelope `m`, remembered with its bytes for {@linkcode cachedMembership}. */
export function membershipOf(m: ReturnType<typeof asEnvelope>, body: Uint8Array): MemberChange[] {
  const changes: MemberChange[] = m.k === Kind.Join ? [{ join: asJoin(m).peer }] : asMembers(m).changes;
  lastFrame = copyBytes(body);
  lastChanges = changes.map((c) => ("join" in c ? { join: { ...c.join } } : { ...c }));
  return changes;
}
