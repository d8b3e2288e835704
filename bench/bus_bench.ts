/**
 * The bus in one process, over in-memory connection pairs: alert round trips
 * peer → hub → peer and back, and request/reply to the hub's echo route,
 * against a bare echo over the same kind of stream pair as the baseline, and
 * an echo through a relay with as many stream hops as the bus makes.
 *
 * The hub is built as `serve()` builds it, minus the socket: its own peer
 * answers `/ipcbus/echo`, and each peer is attached over a
 * `memoryConnectionPair()`, so only the bus's own work is measured.
 *
 * Run: `deno task bench` (all suites) or `deno bench -A bench/bus_bench.ts`.
 *
 * @module
 */
import { type Connection, memoryConnectionPair, type Peer as PeerType } from "../mod.ts";
import { acceptConnection, makeHub, startHub } from "../src/bus/hub.ts";
import { BUS_DEFAULTS } from "../src/bus/hub_settings.ts";
import { makePeer, Peer } from "../src/bus/peer.ts";
import { attachPeer as attach } from "../src/bus/attach_peer.ts";
import { FRAME_HEADER_BYTES } from "../src/codec/frame_parser.ts";

const LIMITS = {
  maxFrameBytes: BUS_DEFAULTS.maxFrameBytes,
  maxQueueMessages: BUS_DEFAULTS.maxQueueMessages,
  maxQueueBytes: BUS_DEFAULTS.maxQueueBytes,
};
const PEER_SETTINGS = { ...LIMITS, requestTimeout: 10_000, dropOldestBroadcasts: false };

const hub = makeHub(undefined, { ...LIMITS, handshakeTimeout: 5_000, closeTimeout: 500 }, PEER_SETTINGS);
await startHub(hub);
hub.peer.handle("/ipcbus/echo", ({ data }) => data);

async function attachPeer(name: string): Promise<PeerType> {
  const peer = makePeer({ ...PEER_SETTINGS, name }, () => new Peer());
  const [hubSide, peerSide] = memoryConnectionPair();
  acceptConnection(hub, hubSide);
  await attach(peer, peerSide, 5_000);
  return peer;
}

const a = await attachPeer("a");
const b = await attachPeer("b");
// b sends every ping straight back; a wakes whoever waits for the pong.
b.on("ping", (data, ctx) => ctx.reply("pong", data));
let pong: (() => void) | undefined;
a.on("pong", () => pong?.());
// a only learns of b from the join, which follows its own welcome.
while (!(await a.peers()).some((p) => p.id === b.id)) await new Promise((r) => setTimeout(r, 1));

function alertRoundTrip(data: Uint8Array): Promise<void> {
  const done = new Promise<void>((resolve) => (pong = resolve));
  a.send(b.id, "ping", data);
  return done;
}

/**
 * The baseline: the far end of a memory pair echoes every chunk; the near end
 * writes a frame and reads it back. With `relay`, chunks also pass through a
 * middle pair each way, as frames through the hub do: four stream hops per
 * round trip, like a request to the hub's own peer or an alert and its reply.
 */
class StreamEcho {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #ends: Connection[];

  constructor(relay: boolean) {
    const [near, nearPeer] = memoryConnectionPair();
    this.#ends = [near, nearPeer];
    let far = nearPeer;
    if (relay) {
      const [middle, farEnd] = memoryConnectionPair();
      void nearPeer.readable.pipeTo(middle.writable).catch(() => {});
      void middle.readable.pipeTo(nearPeer.writable).catch(() => {});
      this.#ends.push(middle, farEnd);
      far = farEnd;
    }
    void far.readable.pipeTo(far.writable).catch(() => {});
    this.#writer = near.writable.getWriter();
    this.#reader = near.readable.getReader();
  }

  async roundTrip(frame: Uint8Array): Promise<void> {
    void this.#writer.write(frame);
    let got = 0;
    while (got < frame.byteLength) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("Stream echo ended early");
      got += value.byteLength;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#ends.map((end) => end.close()));
  }
}
const echo = new StreamEcho(false);
const relayed = new StreamEcho(true);

const SIZES = [{ label: "64 B", bytes: 64 }, { label: "10 KiB", bytes: 10 * 1024 }];
for (const { label, bytes } of SIZES) {
  const data = new Uint8Array(bytes).fill(7);
  const frame = new Uint8Array(FRAME_HEADER_BYTES + bytes).fill(7);

  Deno.bench({
    name: `stream-pair echo ${label}`,
    group: `alert round trip ${label}`,
    baseline: true,
    async fn() {
      await echo.roundTrip(frame);
    },
  });
  Deno.bench({
    name: `stream-pair echo via a relay, 4 hops ${label}`,
    group: `alert round trip ${label}`,
    async fn() {
      await relayed.roundTrip(frame);
    },
  });
  Deno.bench({
    name: `alert a → hub → b, reply b → hub → a ${label}`,
    group: `alert round trip ${label}`,
    async fn() {
      await alertRoundTrip(data);
    },
  });

  Deno.bench({
    name: `stream-pair echo ${label}`,
    group: `request/reply ${label}`,
    baseline: true,
    async fn() {
      await echo.roundTrip(frame);
    },
  });
  Deno.bench({
    name: `stream-pair echo via a relay, 4 hops ${label}`,
    group: `request/reply ${label}`,
    async fn() {
      await relayed.roundTrip(frame);
    },
  });
  Deno.bench({
    name: `request /ipcbus/echo to the hub ${label}`,
    group: `request/reply ${label}`,
    async fn() {
      await a.request("/ipcbus/echo", data);
    },
  });
}

globalThis.addEventListener("unload", () => {
  void Promise.all([a.close(), b.close(), hub.close({ timeout: 0 }), echo.close(), relayed.close()]);
});
