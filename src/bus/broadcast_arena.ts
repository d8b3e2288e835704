import { FRAME_HEADER_BYTES, writeFrameHeader } from "../codec/frame_parser.ts";

/** Each arena holds this much; a frame larger than that gets an arena of its own size. */
const ARENA_BYTES = 64 * 1024;

/**
 * The hub's broadcasts, each copied once, behind its header, into a buffer
 * every destination writes it from (`FrameWriter.pushShared`). Broadcasts
 * that follow one another lie one after another in the same arena, so a
 * destination that takes them all writes a burst of them in one write, with
 * no copy of its own: copied per destination, a broadcast to 1 000 peers cost
 * the hub a thousand copies and a thousand batches (issue 13).
 *
 * A full arena is left to the garbage collector once every writer has written
 * what it took from it; the next frame starts a new one. The arenas a writer
 * keeps alive hold at most twice what it queued plus 128 KiB, besides the one
 * being written (see `FrameWriter.pushShared`): what a peer that stopped
 * reading keeps alive stays bounded by its queue's limits.
 */
export class BroadcastArena {
  /** The arena the last {@linkcode add} wrote into. */
  bytes = new Uint8Array(0);
  /** Where the last frame added starts in {@linkcode bytes}. */
  start = 0;
  /** Where it ends: the next frame goes there if it fits. */
  end = 0;

  /** Copies `body` behind its frame header into the arena, at `bytes[start, end)`. */
  add(body: Uint8Array): void {
    const frameBytes = FRAME_HEADER_BYTES + body.byteLength;
    if (this.end + frameBytes > this.bytes.byteLength) {
      this.bytes = new Uint8Array(Math.max(ARENA_BYTES, frameBytes));
      this.end = 0;
    }
    this.start = this.end;
    writeFrameHeader(this.bytes, this.start, body.byteLength);
    this.bytes.set(body, this.start + FRAME_HEADER_BYTES);
    this.end = this.start + frameBytes;
  }
}
