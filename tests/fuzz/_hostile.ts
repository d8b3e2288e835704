/**
 * The hostile inputs a raw connection sends the hub, as a table: what to
 * send, whether to complete a handshake first, and what the hub must do.
 *
 * @module
 */
import { encodeCbor } from "../../src/codec/cbor.ts";
import { MAX_CBOR_DEPTH } from "../../src/codec/cbor_scan.ts";
import { codeOf, type Message } from "./_raw.ts";
import type { Rng } from "./_rng.ts";
import { amplifiers, concat, deepNesting, frame, head, hugeDeclarations, mutate, randomItem, text } from "./_mutate.ts";

/** What the hub must do with a hostile input. */
export type Expect =
  /** Close the connection by itself, the last thing it sent being one of `kinds` (default `error`), with `code` if given. */
  | { type: "error-close"; kinds?: readonly string[]; code?: string }
  /** Keep the connection: a request sent after the input is answered, and `reply` (if given) arrives. */
  | { type: "open"; reply?: (m: Message) => boolean; why?: string }
  /** Close the connection once it sees the end of the stream (a frame was left incomplete, or anything goes). */
  | { type: "eof-close" }
  /**
   * Whole frames of unknown content: either close the connection by itself after an error or refuse frame,
   * or keep it and answer a request sent after the input.
   */
  | { type: "error-close-or-open" };

export interface HostileCase {
  what: string;
  /** Send a hello asking for id `me` and wait for the welcome before the input. */
  handshake: boolean;
  /** The input, for a connection whose id is (or would be) `me`. */
  bytes(me: number): Uint8Array;
  expect: Expect;
}

/** Ids of the two good peers the hostile connections must not disturb. */
export interface Victims {
  a: number;
  b: number;
}

const MiB = 1024 * 1024;

/** A frame holding `message` as CBOR. */
export function message(m: Record<string, unknown>): Uint8Array {
  return frame(encodeCbor(m));
}

/** A hello from a raw connection; `id` makes the connection's id known in advance. */
export function hello(id?: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { k: "hello", v: 1, pid: 4242, runtime: "fuzz", ...(id === undefined ? {} : { id }), ...extra };
}

/** Values of the wrong CBOR type (or out of range) for each field type of PROTOCOL.md 4.2. */
const WRONG = {
  uint: ["1", new Uint8Array([1]), [], {}, true, null, 1.5, -1, 2 ** 53, 2n ** 64n, -(2n ** 64n) - 5n],
  int: ["1", new Uint8Array([1]), [], {}, true, null, 1.5, 2 ** 53, 2n ** 64n, -(2n ** 70n)],
  helloId: ["1", [], true, null, 1.5, -1, 0, 2n ** 64n],
  text: [1, new Uint8Array([0x61]), [], {}, true, null, 2n ** 64n],
  name: [1, new Uint8Array([0x61]), [], {}, null, "", "n".repeat(257)],
  inc: [1, [], null, "i".repeat(65)],
  bytes: ["d", 1, [], {}, true, null, 2n ** 64n],
  bool: [1, "true", null, [], {}],
  seq: ["1", [], true, null, 1.5, 2n ** 64n],
  error: [
    1,
    "e",
    [],
    {},
    null,
    { name: 1, message: "m" },
    { name: "n", message: 2n ** 64n },
    { name: "n", message: "m", code: 3 },
    { name: "n", message: "m", sys: "yes" },
  ],
  patterns: [
    1,
    "x",
    {},
    null,
    [1],
    [{}],
    [null],
    [{ exact: 1 }],
    [{ prefix: [] }],
    [{ regexp: "a" }],
    [{ regexp: { source: "(", flags: "" } }],
    [{ regexp: { source: "a(?=b)", flags: "" } }],
    [{ regexp: { source: "(?:a{1000}){1000}", flags: "" } }],
    Array.from({ length: 11 }, () => ({ regexp: { source: "a{1900}", flags: "" } })),
    [{ regexp: { source: "a", flags: "qq" } }],
    [{ regexp: { source: 2n ** 64n, flags: "" } }],
    Array.from({ length: 10_001 }, () => ({ exact: "/x" })),
  ],
} as const;

type FieldType = keyof typeof WRONG;

interface KindSpec {
  kind: string;
  /** Sent as the first frame (hello) or after the handshake (everything else). */
  handshake: boolean;
  base(me: number): Record<string, unknown>;
  fields: Record<string, { type: FieldType; optional?: boolean }>;
}

/** Every kind a peer sends, with its fields and their types (PROTOCOL.md 4.1, 4.2). */
const KINDS: KindSpec[] = [
  {
    kind: "hello",
    handshake: false,
    base: () => hello(),
    fields: {
      v: { type: "uint" },
      pid: { type: "int" },
      runtime: { type: "text" },
      name: { type: "name", optional: true },
      id: { type: "helloId", optional: true },
      token: { type: "text", optional: true },
      dropOldest: { type: "bool", optional: true },
      inc: { type: "inc", optional: true },
    },
  },
  {
    kind: "a",
    handshake: true,
    base: (me) => ({ k: "a", f: me, t: me, n: "fuzz", d: encodeCbor(1) }),
    fields: {
      f: { type: "uint" },
      t: { type: "uint", optional: true },
      n: { type: "text" },
      d: { type: "bytes" },
      s: { type: "seq", optional: true },
    },
  },
  {
    kind: "q",
    handshake: true,
    base: (me) => ({ k: "q", f: me, r: 1, u: "/ipcbus/echo", d: encodeCbor(1) }),
    fields: {
      f: { type: "uint" },
      t: { type: "uint", optional: true },
      r: { type: "int" },
      u: { type: "text" },
      d: { type: "bytes" },
    },
  },
  {
    kind: "p",
    handshake: true,
    base: (me) => ({ k: "p", f: me, t: me, r: 1, d: encodeCbor(1) }),
    fields: { f: { type: "uint" }, t: { type: "uint" }, r: { type: "int" }, d: { type: "bytes" } },
  },
  {
    kind: "x",
    handshake: true,
    base: (me) => ({ k: "x", f: me, t: me, r: 1, e: { name: "E", message: "m" } }),
    fields: { f: { type: "uint" }, t: { type: "uint" }, r: { type: "int" }, e: { type: "error" } },
  },
  {
    kind: "handle",
    handshake: true,
    base: () => ({ k: "handle", patterns: [{ exact: "/fuzz/none" }] }),
    fields: { patterns: { type: "patterns" } },
  },
  {
    kind: "ack",
    handshake: true,
    base: (me) => ({ k: "ack", f: me, t: me, s: 1 }),
    // The hub checks t and s as integers and forwards; only values of the wrong type are sure errors.
    fields: { f: { type: "uint" }, t: { type: "int" }, s: { type: "int" } },
  },
];

function shown(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Uint8Array) return `bytes(${value.byteLength})`;
  if (Array.isArray(value) && value.length > 3) return `array(${value.length})`;
  return JSON.stringify(value, (_, v) => typeof v === "bigint" ? `${v}n` : v) ?? String(value);
}

/** Wrong types in every field of every kind, missing required fields, and a `k` that is not text. */
export function fieldCases(): HostileCase[] {
  const out: HostileCase[] = [];
  const refusedOrError = { type: "error-close", kinds: ["error", "refuse"] } as const;
  for (const spec of KINDS) {
    for (const [field, { type, optional }] of Object.entries(spec.fields)) {
      for (const value of WRONG[type]) {
        // PROTOCOL.md §3: a null field counts as absent, which is valid for an optional field.
        if (value === null && optional) continue;
        out.push({
          what: `${spec.kind} with ${field} = ${shown(value).slice(0, 40)}`,
          handshake: spec.handshake,
          bytes: (me) => message({ ...spec.base(me), [field]: value }),
          // A hello of the right shape but another version is refused rather than an error.
          expect: refusedOrError,
        });
      }
      if (!optional) {
        const without = (me: number) => {
          const { [field]: _, ...rest } = spec.base(me);
          return message(rest);
        };
        out.push({
          what: `${spec.kind} without ${field}`,
          handshake: spec.handshake,
          bytes: without,
          expect: refusedOrError,
        });
      }
    }
    for (const k of [1, null, [], {}, new Uint8Array([0x61]), true, 2n ** 64n]) {
      out.push({
        what: `${spec.kind} with k = ${shown(k)}`,
        handshake: spec.handshake,
        bytes: (me) => message({ ...spec.base(me), k }),
        expect: { type: "error-close" },
      });
    }
  }
  return out;
}

/** Map bytes `{ k: kind, junk: item }`: a message the hub accepts if `item` decodes. */
function withJunk(kind: string, item: Uint8Array): Uint8Array {
  return frame(concat([new Uint8Array([0xa2, ...text("k"), ...text(kind), ...text("junk")]), item]));
}

/** The named hostile inputs of issue 7, each with what the hub must do. */
export function namedCases(victims: Victims): HostileCase[] {
  const { a, b } = victims;
  const out: HostileCase[] = [];
  const d = encodeCbor("data");
  const both = (what: string, bytes: Uint8Array, expect: Expect): void => {
    out.push({ what: `${what}, before the handshake`, handshake: false, bytes: () => bytes, expect });
    out.push({ what: `${what}, after the handshake`, handshake: true, bytes: () => bytes, expect });
  };

  // Garbage, framing and size.
  both("an HTTP request", new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), {
    type: "error-close",
    code: "frame_too_large",
  });
  for (const declared of [0xffffffff, 2 ** 31, 64 * MiB + 1]) {
    both(`a header declaring ${declared} bytes`, frame([0xa0], declared), {
      type: "error-close",
      code: "frame_too_large",
    });
  }
  both("a header declaring 64 MiB, then 100 bytes and the end", frame(new Uint8Array(100), 64 * MiB), {
    type: "eof-close",
  });
  both("an empty frame", frame([]), { type: "error-close", code: "protocol_error" });
  both("a truncated frame", message(hello()).subarray(0, 20), { type: "eof-close" });
  both("a truncated header", new Uint8Array([0, 0]), { type: "eof-close" });
  both("a frame with trailing bytes after its item", frame([0xa1, ...text("k"), ...text("bye"), 0x00]), {
    type: "error-close",
    code: "protocol_error",
  });

  // Valid CBOR of the wrong shape.
  const shapes: Array<[string, unknown]> = [
    ["an integer", 1],
    ["a string", "hello"],
    ["an array", [{ k: "hello" }]],
    ["null", null],
    ["bytes", new Uint8Array(8)],
    ["a float", 1.5],
    ["a map without k", { v: 1, pid: 1, runtime: "x" }],
    ["a Map (tag 259) with k", new Map<unknown, unknown>([["k", "hello"], [1, 2]])],
    ["a Date", new Date(0)],
  ];
  for (const [what, value] of shapes) {
    both(`${what} as a message`, frame(encodeCbor(value)), { type: "error-close", code: "protocol_error" });
  }

  // Deep nesting, huge declarations and amplifiers: as a whole body, and inside an otherwise acceptable `bye`.
  const items = [
    ...deepNesting(MAX_CBOR_DEPTH + 1),
    ...deepNesting(10_000),
    ...hugeDeclarations(),
    ...amplifiers(),
  ];
  for (const [what, item] of items) {
    both(`${what} as a body`, frame(item), { type: "error-close", code: "protocol_error" });
    out.push({
      what: `${what} inside a bye`,
      handshake: true,
      bytes: () => withJunk("bye", item),
      expect: { type: "error-close", code: "protocol_error" },
    });
  }

  // Unknown kinds: an error frame, and the connection stays.
  for (
    const k of [
      "zz",
      "",
      "HELLO",
      "welcome",
      "refuse",
      "join",
      "leave",
      "undeliverable",
      "busy",
      "room",
      "error",
      "close",
      "k".repeat(1000),
    ]
  ) {
    out.push({
      what: `unknown kind ${JSON.stringify(k.slice(0, 12))}`,
      handshake: true,
      bytes: (me) => message({ k, f: me }),
      expect: { type: "open", reply: (m) => m.k === "error" && codeOf(m) === "protocol_error", why: "an error frame" },
    });
    out.push({
      what: `unknown kind ${JSON.stringify(k.slice(0, 12))} before the handshake`,
      handshake: false,
      bytes: () => message({ k }),
      expect: { type: "error-close", code: "protocol_error" },
    });
  }

  // Frames before the handshake.
  for (
    const m of [
      { k: "a", f: 1, t: b, n: "spoof", d },
      { k: "a", f: 1, n: "spoof", d },
      { k: "q", f: 1, r: 1, u: "/ipcbus/echo", d },
      { k: "p", f: 1, t: a, r: 1, d },
      { k: "x", f: 1, t: a, r: 1, e: { name: "E", message: "m" } },
      { k: "handle", patterns: [{ prefix: "/" }] },
      { k: "ack", f: 1, t: a, s: 1 },
      { k: "bye" },
    ]
  ) {
    out.push({
      what: `${m.k} before the handshake`,
      handshake: false,
      bytes: () => message(m),
      expect: { type: "error-close", code: "protocol_error" },
    });
  }

  // Handshake problems.
  out.push({ what: "a second hello", handshake: true, bytes: () => message(hello()), expect: { type: "error-close" } });
  out.push({
    what: "two hellos in one write",
    handshake: false,
    bytes: () => concat([message(hello()), message(hello())]),
    expect: { type: "error-close" },
  });
  out.push({
    what: "a hello of protocol version 2",
    handshake: false,
    bytes: () => message({ ...hello(), v: 2 }),
    expect: { type: "error-close", kinds: ["refuse"], code: "protocol_error" },
  });
  out.push({
    what: "a hello claiming a live peer's id",
    handshake: false,
    bytes: () => message(hello(a)),
    expect: { type: "error-close", kinds: ["refuse"], code: "id_taken" },
  });
  out.push({
    what: "a hello claiming a live peer's name",
    handshake: false,
    bytes: () => message(hello(undefined, { name: "good-a" })),
    expect: { type: "error-close", kinds: ["refuse"], code: "name_taken" },
  });

  // Spoofed senders: the connection is dropped and nothing reaches the victims.
  const spoofs = (f: number) => [
    { k: "a", f, t: b, n: "spoof", d },
    { k: "a", f, n: "spoof", d },
    { k: "q", f, t: a, r: 1, u: "/fuzz/work", d },
    { k: "p", f, t: b, r: 1, d },
    { k: "x", f, t: b, r: 1, e: { name: "E", message: "m" } },
    { k: "ack", f, t: a, s: 1 },
  ];
  for (
    const [who, f] of [["a", () => a], ["b", () => b], ["the hub", () => 0], [
      "the next id",
      (me: number) => me + 1,
    ]] as const
  ) {
    for (const [i, m] of spoofs(0).entries()) {
      out.push({
        what: `${m.k} with f of ${who}`,
        handshake: true,
        bytes: (me) => message(spoofs(f(me))[i]),
        expect: { type: "error-close" },
      });
    }
  }
  // The fast path for alerts reads cbor-x's layout too: spoof it in that layout and in the shortest one.
  const shortAlert = [0xa4, ...text("k"), ...text("a"), ...text("f"), ...head(0, a), ...text("n"), ...text("spoof")];
  out.push({
    what: "a broadcast in the shortest layout with f of another peer",
    handshake: true,
    bytes: () => frame([...shortAlert, ...text("d"), 0x41, 0xf6]),
    expect: { type: "error-close" },
  });

  // Ids that do not exist: a report, or a counted drop, and the connection stays.
  const noSuch = 99_999;
  out.push({
    what: "an alert to an id nobody has",
    handshake: true,
    bytes: (me) => message({ k: "a", f: me, t: noSuch, n: "fuzz", d }),
    expect: {
      type: "open",
      reply: (m) => m.k === "undeliverable" && m.reason === "no_such_peer" && m.t === noSuch,
      why: "undeliverable",
    },
  });
  out.push({
    what: "a request to an id nobody has",
    handshake: true,
    bytes: (me) => message({ k: "q", f: me, t: noSuch, r: 5, u: "/fuzz/work", d }),
    expect: {
      type: "open",
      reply: (m) => m.k === "x" && m.r === 5 && codeOf(m) === "no_such_peer",
      why: "x no_such_peer",
    },
  });
  out.push({
    what: "a request for a route nobody serves",
    handshake: true,
    bytes: (me) => message({ k: "q", f: me, r: 6, u: "/fuzz/nobody", d }),
    expect: {
      type: "open",
      reply: (m) => m.k === "x" && m.r === 6 && codeOf(m) === "no_handler_found",
      why: "x no_handler_found",
    },
  });
  const strays = (me: number) => [
    { k: "p", f: me, t: noSuch, r: 5, d },
    { k: "p", f: me, t: a, r: 123_456, d },
    { k: "x", f: me, t: b, r: 123_456, e: { name: "E", message: "m" } },
    { k: "ack", f: me, t: noSuch, s: 1 },
  ];
  for (const [i, m] of strays(0).entries()) {
    out.push({
      what: `${m.k} to ${m.t} for nothing in flight`,
      handshake: true,
      bytes: (me) => message(strays(me)[i]),
      expect: { type: "open" },
    });
  }

  // A request id reused while the first is in flight: an answer comes, the connection stays.
  out.push({
    what: "a request id reused",
    handshake: true,
    bytes: (me) =>
      concat([
        message({ k: "q", f: me, r: 42, u: "/ipcbus/delay", d: encodeCbor({ delay: 20 }) }),
        message({ k: "q", f: me, r: 42, u: "/ipcbus/delay", d: encodeCbor({ delay: 1 }) }),
      ]),
    expect: { type: "open", reply: (m) => m.k === "p" && m.r === 42, why: "an answer to request 42" },
  });
  return out;
}

/** A plausible message from connection `me`, addressed to itself or to nobody the victims handle. */
function ownEnvelope(rng: Rng, me: number): Uint8Array {
  const d = encodeCbor(rng.pick<unknown>([undefined, 1, "x", { n: [1, 2] }, new Uint8Array(3)]));
  const r = rng.int(1000);
  return encodeCbor(rng.pick<Record<string, unknown>>([
    { k: "a", f: me, t: me, n: "fuzz", d },
    { k: "a", f: me, n: "fuzz", d },
    { k: "a", f: me, t: me, n: "fuzz", d, s: { [String(me)]: 3 } },
    { k: "q", f: me, r, u: "/ipcbus/echo", d },
    { k: "q", f: me, t: me, r, u: "/fuzz/self", d },
    { k: "p", f: me, t: me, r, d },
    { k: "x", f: me, t: me, r, e: { name: "E", message: "m", code: "c" } },
    { k: "handle", patterns: [{ exact: "/fuzz/none" }, { regexp: { source: "^/fuzz/none$", flags: "" } }] },
    { k: "ack", f: me, t: me, s: 1 },
    { k: "bye" },
    hello(me),
  ]));
}

/** A random input: mutated messages, random CBOR and random bytes, before or after a handshake. */
export function randomCase(rng: Rng, index: number, me: number): HostileCase {
  const handshake = rng.chance(0.6);
  const parts: Uint8Array[] = [];
  for (let n = rng.range(1, 3); n > 0; n--) {
    const roll = rng.int(10);
    if (roll < 3) parts.push(mutate(rng, frame(ownEnvelope(rng, me))));
    else if (roll < 6) parts.push(frame(mutate(rng, ownEnvelope(rng, me))));
    else if (roll < 7) parts.push(frame(mutate(rng, encodeCbor(hello(me)))));
    else if (roll < 9) parts.push(frame(randomItem(rng, 256)));
    else parts.push(rng.bytes(rng.int(32)));
  }
  const bytes = concat(parts);
  return { what: `random input ${index}`, handshake, bytes: () => bytes, expect: expectFromFraming(bytes) };
}

/**
 * What the hub must do with `bytes`, read as frames the way it reads them: a header declaring more than
 * the default maxFrameBytes ends the connection with an error (if nothing before it did), a frame left
 * incomplete leaves the hub waiting for the end of the stream, and whole frames are each answered.
 */
export function expectFromFraming(bytes: Uint8Array, maxFrameBytes = 64 * MiB): Expect {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at + 4 <= bytes.byteLength) {
    const declared = view.getUint32(at);
    if (declared > maxFrameBytes) return { type: "error-close" };
    at += 4 + declared;
  }
  return at === bytes.byteLength ? { type: "error-close-or-open" } : { type: "eof-close" };
}
