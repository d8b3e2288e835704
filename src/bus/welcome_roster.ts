import type { FrameWriter } from "./frame_writer.ts";
import { encodeMessage, Kind, type PeerInfo, PROTOCOL_VERSION } from "./protocol.ts";
import { encodeCbor } from "../codec/cbor.ts";

/** CBOR's major type 4 (array): an array head is this plus the count. */
const ARRAY = 0x80;

/**
 * The hub's peers as the `welcome` lists them, kept encoded. Each peer's
 * `PeerInfo` is encoded once, when it joins, and the list of all of them is
 * kept as one run of bytes, in join order: a welcome is its few fields
 * followed by that run, written straight into the newcomer's queue. Building
 * and encoding the list of N peers anew for each newcomer cost the hub
 * O(N) objects per join, 500 000 for 1 000 joins one after another, whose
 * garbage also grew V8's young generation by tens of MiB (issue 13). A leave
 * marks the run stale; the next welcome compacts it, leaving out the peers
 * that left. Each peer costs the roster its bytes in the run and an entry in
 * two `Map`s of numbers: a buffer of its own per peer cost a Deno hub about
 * 0.4 KiB per peer more (an `ArrayBuffer`, its view and its backing store).
 */
export class WelcomeRoster {
  /** Where each peer's encoded info starts in `#run`, by id, in join order (a Map keeps insertion order). */
  readonly #starts = new Map<number, number>();
  /** The length of each peer's encoded info, by id: what a compaction moves, without decoding anything. */
  readonly #lengths = new Map<number, number>();
  /** The encoded infos of every peer, one after another, in its first `#length` bytes. */
  #run = new Uint8Array(0);
  #length = 0;
  /** Set by a leave, or a join under an id already listed: `#run` still holds a record no longer listed. */
  #stale = false;

  /** Peer `info` joined: it is listed last. */
  add(info: PeerInfo): void {
    if (this.#starts.delete(info.id)) this.#stale = true;
    const bytes = encodeCbor(info);
    this.#starts.set(info.id, this.#length);
    this.#lengths.set(info.id, bytes.byteLength);
    this.#append(bytes);
  }

  /** Peer `id` left. */
  remove(id: number): void {
    if (this.#starts.delete(id)) this.#stale = true;
    this.#lengths.delete(id);
  }

  /** Queues the `welcome` of peer `id` on `writer`: `{ k, v, id, host?, peers }`, every peer listed. */
  welcome(writer: FrameWriter, id: number, host: number | undefined): void {
    if (this.#stale) this.#compact();
    // The fields before `peers`, and `peers: []` last, whose empty-array head is replaced by the real one.
    const head = encodeMessage({
      k: Kind.Welcome,
      v: PROTOCOL_VERSION,
      id,
      ...(host === undefined ? {} : { host }),
      peers: [],
    });
    if (head[head.byteLength - 1] !== ARRAY) throw new Error("Unexpected encoding of an empty array");
    const count = this.#starts.size;
    const countBytes = count < 24 ? 0 : count < 0x100 ? 1 : count < 0x10000 ? 2 : 4;
    const at = writer.reserve(head.byteLength + countBytes + this.#length);
    if (at < 0) return;
    const out = writer.buffer;
    out.set(head, at);
    let p = at + head.byteLength - 1;
    if (countBytes === 0) out[p++] = ARRAY | count;
    else {
      out[p++] = ARRAY | (countBytes === 1 ? 24 : countBytes === 2 ? 25 : 26);
      for (let shift = (countBytes - 1) * 8; shift >= 0; shift -= 8) out[p++] = (count / 2 ** shift) & 0xff;
    }
    out.set(this.#run.subarray(0, this.#length), p);
  }

  #append(bytes: Uint8Array): void {
    const need = this.#length + bytes.byteLength;
    if (need > this.#run.byteLength) {
      const grown = new Uint8Array(Math.max(need, this.#run.byteLength * 2, 1024));
      grown.set(this.#run.subarray(0, this.#length));
      this.#run = grown;
    }
    this.#run.set(bytes, this.#length);
    this.#length = need;
  }

  /** Moves the records still listed to the front of `#run`, in order, over those that are not. */
  #compact(): void {
    this.#stale = false;
    const run = this.#run;
    let length = 0;
    // Records that were next to each other in the run move as one block.
    let blockFrom = 0;
    let blockTo = 0;
    for (const [id, start] of this.#starts) {
      const bytes = this.#lengths.get(id)!;
      if (start !== blockTo) {
        // A gap: the block before it moves up to end at `length`. Blocks only move towards the front, in order.
        run.copyWithin(length - (blockTo - blockFrom), blockFrom, blockTo);
        blockFrom = start;
      }
      blockTo = start + bytes;
      if (start !== length) this.#starts.set(id, length);
      length += bytes;
    }
    run.copyWithin(length - (blockTo - blockFrom), blockFrom, blockTo);
    this.#length = length;
    // Shrinks too, after many leaves.
    if (length * 4 < run.byteLength) this.#run = run.slice(0, length * 2);
  }
}
