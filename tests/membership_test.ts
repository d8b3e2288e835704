/**
 * Membership at scale (issue 13): the hub's welcome written from peers
 * encoded once (WelcomeRoster), and the process-wide reuse of a decoded
 * `members`/`join` frame by the peers of one process.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FrameWriter } from "../src/bus/frame_writer.ts";
import { FrameParser } from "../src/codec/frame_parser.ts";
import { decodeEnvelope } from "../src/codec/cbor.ts";
import { WelcomeRoster } from "../src/bus/welcome_roster.ts";
import { Kind, type PeerInfo, PROTOCOL_VERSION } from "../src/bus/protocol.ts";
import { cachedMembership, decodeWelcome, membershipOf } from "../src/bus/membership_cache.ts";
import { ProtocolError } from "../src/errors.ts";
import { encodeMessage } from "../src/bus/protocol.ts";
import { connect, type Peer, serve } from "../mod.ts";
import { tempDir, until } from "./_helpers.ts";
import { Rng } from "./fuzz/_rng.ts";
import { mutate } from "./fuzz/_mutate.ts";

/** The frames a FrameWriter wrote, decoded. */
async function written(fill: (writer: FrameWriter) => void): Promise<unknown[]> {
  const frames: unknown[] = [];
  const parser = new FrameParser();
  const writer = new FrameWriter(
    new WritableStream<Uint8Array>({
      write: (chunk) => parser.push(chunk, (body) => void frames.push(decodeEnvelope(body.slice()))),
    }),
    { maxMessages: 1 << 20, maxBytes: 1 << 30 },
  );
  fill(writer);
  await writer.close(1000);
  return frames;
}

const info = (id: number): PeerInfo => ({
  id,
  pid: 1000 + id,
  runtime: id % 2 ? "deno" : "bun",
  since: 1_700_000_000_000 + id,
  ...(id % 3 === 0 ? { name: `peer-${id}` } : {}),
});

test("A welcome from the roster decodes as the list of every peer in join order, across leaves, rejoins and array sizes", async () => {
  const roster = new WelcomeRoster();
  const present: PeerInfo[] = [];
  let nextId = 1;
  // 0 peers, then past the 1-byte (24) and 2-byte (256) CBOR array heads, with leaves in between.
  for (const target of [0, 5, 23, 24, 30, 255, 256, 300, 40]) {
    while (present.length < target) {
      const next = info(nextId++);
      roster.add(next);
      present.push(next);
    }
    if (target === 30) {
      for (const gone of [present[3], present[17]]) roster.remove(gone.id);
      present.splice(17, 1);
      present.splice(3, 1);
    }
    if (target === 255) {
      // A join under an id already listed (a peer back with its id) lists it once, last, as it is now.
      const back = { ...present[10], name: "back again" };
      roster.add(back);
      present.splice(10, 1);
      present.push(back);
    }
    if (target === 256) {
      // The first two leave: the run starts with a gap, two records wide.
      for (const gone of present.splice(0, 2)) roster.remove(gone.id);
    }
    if (target === 40) {
      // Most peers leave: the welcome lists the rest, from a run that shrank.
      for (const gone of present.splice(5, present.length - 40)) roster.remove(gone.id);
    }
    for (const host of [undefined, 0]) {
      const [frame] = await written((w) => roster.welcome(w, 7, host));
      assert.deepEqual(frame, {
        k: Kind.Welcome,
        v: PROTOCOL_VERSION,
        id: 7,
        ...(host === undefined ? {} : { host }),
        peers: present,
      });
    }
  }
});

/** The welcome frames a FrameWriter wrote, as bytes. */
async function welcomeBytes(roster: WelcomeRoster, id: number, host?: number): Promise<Uint8Array> {
  const frames: Uint8Array[] = [];
  const parser = new FrameParser();
  const writer = new FrameWriter(
    new WritableStream<Uint8Array>({ write: (chunk) => parser.push(chunk, (body) => void frames.push(body.slice())) }),
    { maxMessages: 16, maxBytes: 1 << 24 },
  );
  roster.welcome(writer, id, host);
  await writer.close(1000);
  return frames[0];
}

test("decodeWelcome decodes welcomes one after another as decodeEnvelope does, sharing repeated records, frozen", async () => {
  const roster = new WelcomeRoster();
  let previous: Array<Record<string, unknown>> = [];
  for (let id = 1; id <= 40; id++) {
    roster.add(info(id));
    // Leaves shift the later records: those are decoded again, not taken from the wrong place.
    if (id === 20) roster.remove(4);
    if (id === 30) roster.remove(25);
    const frame = await welcomeBytes(roster, id, id % 2 ? 0 : undefined);
    const welcome = decodeWelcome(frame) as { peers: Array<Record<string, unknown>> };
    assert.deepEqual(welcome, decodeEnvelope(frame), `welcome ${id}`);
    // Shared by the peers of the process, so frozen: nobody can change what another sees, nor the next welcome.
    for (const p of welcome.peers) assert.ok(Object.isFrozen(p), `welcome ${id}: a record is not frozen`);
    assert.throws(() => (welcome.peers[0].name = "changed by a user"), TypeError);
    // Records before the first leave's place are the same bytes as last time: taken from the cache, not decoded again.
    if (id > 1 && id < 20) assert.equal(welcome.peers[0], previous[0]);
    previous = welcome.peers;
  }
  // A frame in another shape (here: an array of peers with an indefinite-length map) is decoded whole.
  const odd = Uint8Array.from([
    0xa2,
    0x61,
    0x6b,
    0x67,
    ...new TextEncoder().encode("welcome"),
    0x65,
    ...new TextEncoder().encode("peers"),
    0x81,
    0xbf,
    0x62,
    0x69,
    0x64,
    0x01,
    0xff,
  ]);
  assert.deepEqual(decodeWelcome(odd), { k: "welcome", peers: [{ id: 1 }] });
  // Malformed CBOR is refused as by decodeEnvelope: a map that declares more entries than it holds.
  assert.throws(() => decodeWelcome(Uint8Array.from([0xa3, 0x61, 0x6b, 0x61, 0x77])), ProtocolError);
});

/** What `decode` made of `frame`: its value, or the class of what it threw. */
function outcome(decode: (frame: Uint8Array) => unknown, frame: Uint8Array): unknown {
  try {
    return { value: decode(frame) };
  } catch (err) {
    return { threw: (err as Error).constructor.name };
  }
}

test("decodeWelcome, its last welcome remembered, decodes or refuses mutated welcomes exactly as decodeEnvelope does", async () => {
  const rng = new Rng(0x3e1c0e);
  const roster = new WelcomeRoster();
  let refused = 0;
  for (let id = 1; id <= 60; id++) {
    roster.add(info(id));
    const frame = await welcomeBytes(roster, id, id % 2 ? 0 : undefined);
    for (let i = 0; i < 40; i++) {
      // The valid welcome first, so the mutation meets its records in the cache.
      decodeWelcome(frame);
      const bad = mutate(rng, frame);
      const expected = outcome(decodeEnvelope, bad);
      assert.deepEqual(outcome(decodeWelcome, bad), expected, `welcome ${id}, mutation ${i}: ${bad}`);
      if ("threw" in (expected as object)) refused++;
    }
  }
  // The mutations reach both ways: frames refused, and frames decoded to something else.
  assert.ok(refused > 200 && refused < 2200, `${refused} of 2 400 mutated welcomes refused`);
  // Hostile heads where the cache would skip ahead: a list declaring more records than the frame holds, and keys
  // an object literal treats apart.
  const enc = new TextEncoder();
  const hostile = [
    [0xa2, 0x61, 0x6b, 0x61, 0x77, 0x65, ...enc.encode("peers"), 0x9a, 0xff, 0xff, 0xff, 0xff, 0xa0],
    [0xa1, 0x69, ...enc.encode("__proto__"), 0xa1, 0x61, 0x78, 0x01],
    [0xa1, 0x01, 0x02],
    [0xa1, 0x65, ...enc.encode("peers"), 0x80, 0x00],
  ].map((bytes) => Uint8Array.from(bytes));
  for (const bytes of hostile) {
    assert.deepEqual(outcome(decodeWelcome, bytes), outcome(decodeEnvelope, bytes), `${bytes}`);
  }
});

test("A membership frame seen again is answered from the cache, frozen, and only when every byte is equal", () => {
  const changes = [{ join: info(3) }, { leave: 2, reason: "closed" }];
  const body = encodeMessage({ k: Kind.Members, changes });
  const first = membershipOf(decodeEnvelope(body) as never, body);
  assert.deepEqual(first, changes);
  const again = cachedMembership(body.slice())!;
  assert.deepEqual(again, changes);
  // The same frozen changes for every peer of the process: none can change what another sees.
  assert.equal(again, first);
  assert.ok(Object.isFrozen(again) && Object.isFrozen(again[0]));
  assert.throws(() => ((again[0] as { join: PeerInfo }).join.name = "x"), TypeError);
  const other = body.slice();
  other[other.byteLength - 1] ^= 1;
  assert.equal(cachedMembership(other), undefined);
});

test("Peers of one process each keep an exact view of joins and leaves, sharing frozen records", async () => {
  const dir = tempDir();
  const hub = await serve({ path: `${dir.path}/m.sock` });
  const peers: Peer[] = [];
  try {
    for (let i = 0; i < 4; i++) peers.push(await connect({ path: hub.path! }));
    const joined: number[] = [];
    peers[0].addEventListener("peerjoin", (e) => void joined.push(e.detail.id));
    const late = await connect({ path: hub.path!, name: "late" });
    const ids = async (p: Peer) => (await p.peers()).map((x) => x.id);
    /** Polls `p`'s view (as tests/_helpers.ts until does) until `done` holds of its ids. */
    const view = async (p: Peer, what: string, done: (ids: number[]) => boolean) => {
      let seen: number[] = [];
      await until(5000, what, () => {
        void ids(p).then((list) => (seen = list));
        return done(seen);
      });
      return seen;
    };
    const expected = [0, ...peers.map((p) => p.id), late.id];
    for (const p of peers) {
      assert.deepEqual(await view(p, "the join in every view", (v) => v.length === expected.length), expected);
    }
    assert.deepEqual(joined, [late.id]);
    // Records are shared by the peers of the process, and frozen: one peer's user cannot change another's view.
    const a = (await peers[1].peers()).find((x) => x.id === late.id)!;
    assert.throws(() => (a.name = "changed"), TypeError);
    const b = (await peers[2].peers()).find((x) => x.id === late.id)!;
    assert.equal(b.name, "late");
    await late.close();
    for (const p of peers) await view(p, "the leave in every view", (v) => !v.includes(late.id));
  } finally {
    for (const p of peers) await p.close();
    await hub.close();
    dir.remove();
  }
});
