import type { Bucket, KV, KvEntry } from "@nats-io/kv";
import { decodeCbor, encodeCbor } from "../codec/cbor.ts";
import { ErrorCode, IpcError } from "../errors.ts";
import type { PeerInfo } from "../bus/protocol.ts";
import { asPeerInfo } from "./nats_protocol.ts";

/** How often a live peer rewrites its leases. */
export const LEASE_REFRESH_MS = 1000;
/** A lease whose revision stayed the same this long belongs to a peer that is gone. */
export const LEASE_STALE_MS = 3000;
/** The bucket's max age: leases of peers that died disappear after it. */
export const LEASE_TTL_MS = 15_000;

/** How many ids past the taken ones a claim tries before giving up (others may race for the same). */
const CLAIM_ATTEMPTS = 64;

/** A name lease: the id its peer holds, and whether the peer closed (its id is free for the same name at once). */
interface NameRecord {
  id: number;
  inc: string;
  closed?: boolean;
}

const enc = new TextEncoder();
const hex = (s: string) => Array.from(enc.encode(s), (b) => b.toString(16).padStart(2, "0")).join("");
const isPut = (e: KvEntry | null): e is KvEntry => e !== null && e.operation === "PUT";

/** JetStream refuses a create or an update whose expected revision is not the key's: someone else wrote it. */
function isConflict(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 10071 || /wrong last sequence|key exists/i.test(String(err));
}

/**
 * The id (and name) a peer holds on a NATS bus, as leases in a JetStream KV
 * bucket: `id.<n>` holds the peer's record, `name.<hex of the name>` the id
 * the name holds. Claims are atomic (`create`, or `update` at a revision);
 * the holder rewrites both every {@linkcode LEASE_REFRESH_MS}. A lease not
 * rewritten for {@linkcode LEASE_STALE_MS} may be taken over by a peer of the
 * same name; one not rewritten for {@linkcode LEASE_TTL_MS} expires.
 */
export class IdLease {
  readonly #kv: KV;
  readonly #record: PeerInfo;
  readonly #nameKey: string | undefined;
  #idRevision: number;
  #nameRevision: number | undefined;

  private constructor(kv: KV, record: PeerInfo, idRevision: number, nameRevision: number | undefined) {
    this.#kv = kv;
    this.#record = record;
    this.#nameKey = record.name === undefined ? undefined : nameKey(record.name);
    this.#idRevision = idRevision;
    this.#nameRevision = nameRevision;
  }

  /** The id held. */
  get id(): number {
    return this.#record.id;
  }

  /**
   * Claims the lowest free id, or the id `record.name` held before when its
   * holder is gone (closed, or silent for {@linkcode LEASE_STALE_MS}).
   *
   * @param record This peer's record; its `id` is set to the id claimed.
   * @throws {IpcError} with code `name_taken` when a live peer holds the name.
   */
  static async claim(kv: KV, record: Omit<PeerInfo, "id"> & { inc: string }): Promise<IdLease> {
    if (record.name === undefined) {
      const [id, revision] = await claimLowest(kv, record);
      return new IdLease(kv, { ...record, id }, revision, undefined);
    }
    const key = nameKey(record.name);
    for (let attempt = 0; attempt < 4; attempt++) {
      let entry = await kv.get(key);
      let id: number | undefined;
      let idRevision = 0;
      if (isPut(entry)) {
        let held = decodeCbor(entry.value) as NameRecord;
        if (!held.closed) {
          // Held by a peer that is alive, or died without closing: wait to see whether it rewrites the lease.
          const seen = entry.revision;
          await new Promise((resolve) => setTimeout(resolve, LEASE_STALE_MS));
          entry = await kv.get(key);
          if (isPut(entry) && entry.revision !== seen) {
            held = decodeCbor(entry.value) as NameRecord;
            if (!held.closed) {
              throw new IpcError(`Name ${record.name} is taken by live peer ${held.id}`, { code: ErrorCode.NameTaken });
            }
          }
        }
        const taken = await takeOver(kv, held, { ...record, id: held.id });
        if (taken !== undefined) [id, idRevision] = [held.id, taken];
      }
      if (id === undefined) [id, idRevision] = await claimLowest(kv, record);
      const value = encodeCbor({ id, inc: record.inc } satisfies NameRecord);
      try {
        const nameRevision = entry !== null ? await kv.update(key, value, entry.revision) : await kv.create(key, value);
        return new IdLease(kv, { ...record, id }, idRevision, nameRevision);
      } catch (err) {
        // Another peer of the same name got there first: give the id back and look again.
        await kv.delete(`id.${id}`, { previousSeq: idRevision }).catch(() => {});
        if (!isConflict(err)) throw err;
      }
    }
    throw new IpcError(`Name ${record.name} is contended: no lease after 4 attempts`, { code: ErrorCode.NameTaken });
  }

  /**
   * Rewrites both leases. Resolves false when another peer has taken one
   * over (this peer was taken for gone); a rewrite that fails for another
   * reason (no JetStream leader for a moment) is retried at the next call.
   */
  async refresh(): Promise<boolean> {
    const value = encodeCbor(this.#record);
    try {
      this.#idRevision = await this.#rewrite(`id.${this.id}`, value, this.#idRevision);
      if (this.#nameKey !== undefined) {
        const name = encodeCbor({ id: this.id, inc: this.#record.inc! } satisfies NameRecord);
        this.#nameRevision = await this.#rewrite(this.#nameKey, name, this.#nameRevision!);
      }
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      return true;
    }
  }

  /** A lease that expired while the bucket could not be written is created again; any other writer wins. */
  async #rewrite(key: string, value: Uint8Array, revision: number): Promise<number> {
    try {
      return await this.#kv.update(key, value, revision);
    } catch (err) {
      if (!isConflict(err) || isPut(await this.#kv.get(key))) throw err;
      return await this.#kv.create(key, value);
    }
  }

  /** Gives the id back; the name lease stays, marked closed, so that the same name gets the id again at once. */
  async release(): Promise<void> {
    const tasks = [this.#kv.delete(`id.${this.id}`, { previousSeq: this.#idRevision })];
    if (this.#nameKey !== undefined) {
      const value = encodeCbor({ id: this.id, inc: this.#record.inc!, closed: true } satisfies NameRecord);
      tasks.push(this.#kv.update(this.#nameKey, value, this.#nameRevision!).then(() => {}));
    }
    await Promise.allSettled(tasks);
  }
}

/**
 * The records of every lease in the bucket, with the local time of their
 * last rewrite as the server stamped it.
 */
export async function leasedPeers(kv: KV): Promise<Array<{ info: PeerInfo; written: number }>> {
  const out: Array<{ info: PeerInfo; written: number }> = [];
  for (const entry of await idLeases(kv)) {
    try {
      out.push({ info: asPeerInfo(decodeCbor(entry.value)), written: entry.created.getTime() });
    } catch {
      // A record this build cannot read: not a peer it can talk to.
    }
  }
  return out;
}

/**
 * The `id.<n>` leases held now. Listed from the stream's subjects, not with
 * `kv.keys()`: that makes a consumer, and consumers of a replicated stream
 * could not be made for 15 s after a server of the cluster died.
 */
async function idLeases(kv: KV): Promise<KvEntry[]> {
  const bucket = kv as Bucket;
  const info = await bucket.jsm.streams.info(bucket.stream, { subjects_filter: bucket.subjectForKey("id.>") });
  const keys = Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(subject.lastIndexOf(".id.") + 1));
  return (await Promise.all(keys.map((key) => kv.get(key)))).filter(isPut);
}

function nameKey(name: string): string {
  return `name.${hex(name)}`;
}

/** Takes over id lease `held.id` if it is free or still held by the name's previous holder; resolves its revision. */
async function takeOver(kv: KV, held: NameRecord, record: PeerInfo): Promise<number | undefined> {
  const key = `id.${held.id}`;
  const value = encodeCbor(record);
  const entry = await kv.get(key);
  try {
    if (!isPut(entry)) return await kv.create(key, value);
    if ((decodeCbor(entry.value) as PeerInfo).inc !== held.inc) return undefined;
    return await kv.update(key, value, entry.revision);
  } catch (err) {
    if (isConflict(err)) return undefined;
    throw err;
  }
}

/** Creates the lowest `id.<n>` nobody holds; resolves the id and the revision. */
async function claimLowest(kv: KV, record: Omit<PeerInfo, "id">): Promise<[number, number]> {
  const taken = new Set((await idLeases(kv)).map((entry) => Number(entry.key.slice(3))));
  let id = 1;
  for (let attempt = 0; attempt < taken.size + CLAIM_ATTEMPTS; attempt++, id++) {
    while (taken.has(id)) id++;
    try {
      return [id, await kv.create(`id.${id}`, encodeCbor({ ...record, id }))];
    } catch (err) {
      if (!isConflict(err)) throw err;
      taken.add(id);
    }
  }
  throw new IpcError(`No id left to assign after ${CLAIM_ATTEMPTS} contended attempts`, { code: ErrorCode.IdTaken });
}
