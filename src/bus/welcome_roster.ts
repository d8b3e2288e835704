import type { FrameWriter } from "./frame_writer.ts";
import { encodeMessage, Kind, type PeerInfo, PROTOCOL_VERSION } from "./protocol.ts";
import { encodeCbor } from "../codec/cbor.ts";
import { copyBytes } from "../util/copy_bytes.ts";

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
 * marks the run stale; the next welcome rebuilds it from the encoded peers.
 */
export class WelcomeRoster {
  /** Each peer's encoded info, by id, in join order (a Map keeps insertion order). */
  readonly #encoded = new Map<number, Uint8Array>();
  /** The encoded infos of every peer, one after another, in its first `#length` bytes. */
  #run = new Uint8Array(0);
  #length = 0;
  /** Set by a leave: `#run` still holds the peer that left. */
  #stale = false;

  /** Peer `info` joined: it is listed last. */
  add(info: PeerInfo): void {
    // A copy: cbor-x's result is a view of its shared output buffer (a Buffer, whose slice() is a view too),
    // and a view kept for as long as the peer stays would pin all of that buffer (some 5 KiB per peer, measured).
    const bytes = copyBytes(encodeCbor(info));
    if (this.#encoded.delete(info.id)) this.#stale = true;
    this.#encoded.set(info.id, bytes);
    if (!this.#stale) this.#append(bytes);
  }

  /** Peer `id` left. */
  remove(id: number): void {
    if (this.#encoded.delete(id)) this.#stale = true;
  }

  /** Queues the `welcome` of peer `id` on `writer`: `{ k, v, id, host?, peers }`, every peer listed. */
  welcome(writer: FrameWriter, id: number, host: number | undefined): void {
    if (this.#stale) this.#rebuild();
    // The fields before `peers`, and `peers: []` last, whose empty-array head is replaced by the real one.
    const head = encodeMessage({
      k: Kind.Welcome,
      v: PROTOCOL_VERSION,
      id,
      ...(host === undefined ? {} : { host }),
      peers: [],
    });
    if (head[head.byteLength - 1] !== ARRAY) throw new Error("Unexpected encoding of an empty array");
    const count = this.#encoded.size;
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

  #rebuild(): void {
    this.#stale = false;
    this.#length = 0;
    let bytes = 0;
    for (const encoded of this.#encoded.values()) bytes += encoded.byteLength;
    // Shrinks too, after many leaves.
    if (bytes * 4 < this.#run.byteLength) this.#run = new Uint8Array(bytes * 2);
    for (const encoded of this.#encoded.values()) this.#append(encoded);
  }
}
