/**
 * The one place cbor-x is configured. Loaded through `cbor-x/encode` and
 * `cbor-x/decode` so the optional native addon `cbor-extract` is never
 * loaded: it crashes Deno (missing V8 symbol) and Bun (long strings) alike,
 * and the bare `cbor-x` entry also demands `--allow-env` on Deno.
 *
 * @module
 */
import { addExtension, Encoder } from "cbor-x/encode";
import { Decoder, setSizeLimits } from "cbor-x/decode";
import { DataError, ProtocolError } from "../errors.ts";
import { MAX_CBOR_DEPTH, scanCbor, scanCborItem } from "./cbor_scan.ts";
import { pooledCopy } from "../util/pooled_copy.ts";
import { plainBytes } from "../util/plain_bytes.ts";

/** Upper bounds on what one CBOR item may declare, whatever its frame size. */
const CBOR_LIMITS = {
  maxArraySize: 1_000_000,
  maxMapSize: 1_000_000,
  maxObjectSize: 1_000_000,
} as const;

// Declared in cbor-x's JavaScript but missing from its type definitions.
(setSizeLimits as unknown as (limits: typeof CBOR_LIMITS) => void)(CBOR_LIMITS);

// Plain RFC 8949 on the wire: no record extension, and byte strings untagged
// whether or not a Node `Buffer` global exists.
const encoder = new Encoder({
  useRecords: false,
  tagUint8Array: false,
  // deno-lint-ignore no-explicit-any
} as any);
// An Error travels as a plain `{ name, message, code? }` record: cbor-x's own
// tag 27 comes back as an Error whose stack is the decoder's, which only
// misleads. No tag is written, so any CBOR reader sees a map. (cbor-x keeps
// extensions per module, so this applies to every encoder of this copy.)
addExtension(
  {
    Class: Error,
    encode(error: Error, encode: (value: unknown) => void) {
      const code = (error as { code?: unknown }).code;
      encode(
        typeof code === "string" ? { name: error.name, message: error.message, code } : {
          name: error.name,
          message: error.message,
        },
      );
    },
  } as unknown as Parameters<typeof addExtension>[0],
);

// copyBuffers: byte strings in user data must not keep whole read chunks alive.
const valueDecoder = new Decoder({ useRecords: false, copyBuffers: true } as Record<string, unknown>);
// Envelopes are decoded in place: their payload is a view the hub forwards.
// Byte strings come back as plain Uint8Arrays because the source always is
// one (plainBytes): cbor-x slices or views its source.
const envelopeDecoder = new Decoder({ useRecords: false } as Record<string, unknown>);

const MAJOR_BYTES = 0x40;

/** Bytes of a CBOR head whose argument (a length, or an integer's magnitude) is below 2³². */
export function headBytes(value: number): number {
  return value < 24 ? 1 : value < 0x100 ? 2 : value < 0x10000 ? 3 : 5;
}

/**
 * Writes a CBOR head of major type `major` (its top three bits, e.g. `0x40`
 * for a byte string) whose argument `value` is below 2³², in the shortest
 * form, at `at`; returns the offset after it. What cbor-x writes for the same
 * argument (tests/envelope_differential_test.ts).
 */
export function writeHead(target: Uint8Array, at: number, major: number, value: number): number {
  if (value < 24) {
    target[at] = major | value;
    return at + 1;
  }
  if (value < 0x100) {
    target[at] = major | 24;
    target[at + 1] = value;
    return at + 2;
  }
  if (value < 0x10000) {
    target[at] = major | 25;
    target[at + 1] = value >>> 8;
    target[at + 2] = value & 0xff;
    return at + 3;
  }
  target[at] = major | 26;
  target[at + 1] = value >>> 24;
  target[at + 2] = (value >>> 16) & 0xff;
  target[at + 3] = (value >>> 8) & 0xff;
  target[at + 4] = value & 0xff;
  return at + 5;
}

/** Writes `bytes` as a CBOR byte string (head, then the bytes) at `at`; returns the offset after it. */
export function writeByteString(target: Uint8Array, at: number, bytes: Uint8Array): number {
  at = writeHead(target, at, MAJOR_BYTES, bytes.byteLength);
  target.set(bytes, at);
  return at + bytes.byteLength;
}

/**
 * Encodes one value as a CBOR item.
 *
 * @throws {DataError} when the value holds a function, a symbol or a cycle;
 * its `path` names the bad value.
 */
export function encodeCbor(value: unknown): Uint8Array {
  try {
    // Where a Buffer global exists this is a Buffer: callers copy it into a
    // frame and never hand it to users, so it is not rewrapped per call.
    return encoder.encode(value);
  } catch (cause) {
    // Looked for only after cbor-x failed, so plain data pays nothing.
    const bad = findUnencodable(value);
    if (bad === undefined) throw cause;
    throw new DataError(`Cannot encode ${bad.path}: ${bad.what}`, { path: bad.path, cause });
  }
}

/** The largest scratch {@linkcode encodeCborTransient} keeps between calls; larger values get a buffer of their own. */
const MAX_SCRATCH_BYTES = 2 * 1024 * 1024;
let scratch = new Uint8Array(0);

/**
 * Encodes `value` for a caller that copies the result before anything else
 * encodes: a `Uint8Array`, the common payload, is written by hand (head,
 * then bytes) into one buffer that every call reuses, so a large payload
 * costs one copy and no fresh memory (fresh pages cost more than the copy
 * on the project's VM, and cbor-x moves on to a fresh buffer every few large
 * values). Anything else is {@linkcode encodeCbor}'s.
 *
 * @throws {DataError} as {@linkcode encodeCbor}.
 */
export function encodeCborTransient(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength >= 0x100000000) return encodeCbor(value);
  const bytes = headBytes(value.byteLength) + value.byteLength;
  let target = scratch;
  if (target.byteLength < bytes) {
    target = new Uint8Array(Math.max(bytes, Math.min(2 * target.byteLength, MAX_SCRATCH_BYTES)));
    if (target.byteLength <= MAX_SCRATCH_BYTES) scratch = target;
  }
  writeByteString(target, 0, value);
  return target.subarray(0, bytes);
}

/** How a property key reads in a path: `.name`, or `["odd key"]`. */
function pathStep(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/**
 * The first function, symbol or cycle in `root`, depth first, with its path
 * from `data`. Iterative with an explicit stack, so a deep or cyclic value
 * cannot overflow the call stack here.
 */
function findUnencodable(root: unknown): { path: string; what: string } | undefined {
  type Frame = { value: unknown; path: string; ancestors: ReadonlySet<object> };
  const stack: Frame[] = [{ value: root, path: "data", ancestors: new Set() }];
  while (stack.length > 0) {
    const { value, path, ancestors } = stack.pop()!;
    if (typeof value === "function") return { path, what: "a function cannot be sent" };
    if (typeof value === "symbol") return { path, what: "a symbol cannot be sent" };
    if (typeof value !== "object" || value === null || ArrayBuffer.isView(value) || value instanceof Error) continue;
    if (ancestors.has(value)) return { path, what: "the object contains itself (a cycle)" };
    const inside = new Set(ancestors).add(value);
    const children: Frame[] = [];
    if (value instanceof Map) {
      for (const [k, v] of value) {
        children.push({ value: v, path: `${path}.get(${JSON.stringify(String(k))})`, ancestors: inside });
      }
    } else if (value instanceof Set || Array.isArray(value)) {
      let i = 0;
      for (const v of value) children.push({ value: v, path: `${path}[${i++}]`, ancestors: inside });
    } else {
      for (const [k, v] of Object.entries(value)) {
        children.push({ value: v, path: path + pathStep(k), ancestors: inside });
      }
    }
    stack.push(...children.reverse());
  }
  return undefined;
}

/**
 * The contents of `bytes` if it is exactly one definite-length CBOR byte
 * string, else undefined: a view when `bytes` lies in a frame's own buffer
 * (`own`), else a copy, a plain `Uint8Array` either way.
 */
function byteString(bytes: Uint8Array, own: boolean): Uint8Array | undefined {
  if (bytes.byteLength === 0) return undefined;
  const first = bytes[0];
  if (first < MAJOR_BYTES || first > (MAJOR_BYTES | 26)) return undefined;
  const info = first & 0x1f;
  let head = 1;
  let length = info;
  if (info === 24) {
    head = 2;
    length = bytes[1];
  } else if (info === 25) {
    head = 3;
    length = bytes[1] << 8 | bytes[2];
  } else if (info === 26) {
    head = 5;
    length = bytes[1] * 0x1000000 + (bytes[2] << 16 | bytes[3] << 8 | bytes[4]);
  } else if (info > 26) return undefined;
  // Truncated heads read undefined bytes: NaN lengths fail this too.
  if (head + length !== bytes.byteLength) return undefined;
  if (!own) return pooledCopy(bytes.subarray(head));
  // A view of Bun's Buffer would be a Buffer: users get plain arrays.
  return bytes.constructor === Uint8Array
    ? bytes.subarray(head)
    : new Uint8Array(bytes.buffer, bytes.byteOffset + head, length);
}

function decodeWith(decoder: Decoder, bytes: Uint8Array): unknown {
  const plain = plainBytes(bytes);
  // Checked before cbor-x sees it: nesting, declared sizes, trailing bytes.
  scanCbor(plain);
  return decodeScanned(decoder, plain);
}

/** `plain`, which a scan accepted, decoded by `decoder`; what cbor-x still refuses is a `ProtocolError`. */
function decodeScanned(decoder: Decoder, plain: Uint8Array): unknown {
  try {
    return decoder.decode(plain);
  } catch (cause) {
    throw new ProtocolError(
      `Cannot decode frame: invalid CBOR in ${plain.byteLength} bytes (${(cause as Error)?.message ?? cause})`,
      { cause },
    );
  }
}

/**
 * Decodes one CBOR item of user data: byte strings come back as fresh
 * `Uint8Array`s, except that a value that is one byte string comes back as
 * a view of `bytes` when they lie in a frame's own buffer (`own`: a plain
 * `Uint8Array` the frame reader allocated and handed over).
 */
export function decodeCbor(bytes: Uint8Array, own = false): unknown {
  return byteString(bytes, own) ?? decodeWith(valueDecoder, bytes);
}

/** Decodes a protocol envelope; byte strings in it are views into `bytes`. */
export function decodeEnvelope(bytes: Uint8Array): unknown {
  return decodeWith(envelopeDecoder, bytes);
}

/**
 * Decodes the item at `at` in `bytes`, which other items may follow, as
 * {@linkcode decodeEnvelope} decodes a whole frame (nested at most
 * `maxDepth` deep): for a frame read item by item, each item checked once.
 *
 * @returns The item, and where it ends in `bytes`.
 * @throws {ProtocolError} for malformed CBOR.
 *
 * @example
 * ```ts
 * import { decodeEnvelopeItem } from "./cbor.ts";
 * const { value, end } = decodeEnvelopeItem(Uint8Array.from([0x01, 0x02]), 0); // 1, 1
 * ```
 */
export function decodeEnvelopeItem(
  bytes: Uint8Array,
  at: number,
  maxDepth: number = MAX_CBOR_DEPTH,
): { value: unknown; end: number } {
  const item = plainBytes(bytes).subarray(at);
  const bytesIn = scanCborItem(item, maxDepth);
  return { value: decodeScanned(envelopeDecoder, item.subarray(0, bytesIn)), end: at + bytesIn };
}
