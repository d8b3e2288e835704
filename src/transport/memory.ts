import type { Connection } from "./connection.ts";

class MemoryConnection implements Connection {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly #terminate: () => void;
  #closed = false;

  constructor(
    inbound: TransformStream<Uint8Array, Uint8Array>,
    outbound: TransformStream<Uint8Array, Uint8Array>,
    terminate: () => void,
  ) {
    this.readable = inbound.readable;
    this.writable = outbound.writable;
    this.#terminate = terminate;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#terminate();
    }
    return Promise.resolve();
  }
}

function pipe(): { stream: TransformStream<Uint8Array, Uint8Array>; terminate: () => void } {
  let controller!: TransformStreamDefaultController<Uint8Array>;
  const stream = new TransformStream<Uint8Array, Uint8Array>(
    {
      start: (c) => void (controller = c),
      // Copied so a writer may reuse its buffer once write() resolves, as it may with a socket.
      transform: (chunk, c) => c.enqueue(chunk.slice()),
    },
    new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
    new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
  );
  return {
    stream,
    terminate: () => {
      try {
        controller.terminate();
      } catch {
        // Terminated from the other end already.
      }
    },
  };
}

/**
 * Two connected in-memory {@linkcode Connection}s: bytes written to one are
 * read from the other, with the same backpressure as a socket. The core runs
 * over it unchanged, in tests and for a hub inside the current process.
 *
 * @returns Both ends of the pair.
 *
 * @example Talking to yourself
 * ```ts
 * import { memoryConnectionPair } from "@ipcbus/ipcbus";
 * const [a, b] = memoryConnectionPair();
 * const writer = a.writable.getWriter();
 * void writer.write(new Uint8Array([1, 2, 3]));
 * const { value } = await b.readable.getReader().read();
 * console.log(value); // Uint8Array(3) [1, 2, 3]
 * ```
 */
export function memoryConnectionPair(): [Connection, Connection] {
  const ab = pipe();
  const ba = pipe();
  const closeBoth = () => {
    ab.terminate();
    ba.terminate();
  };
  return [new MemoryConnection(ba.stream, ab.stream, closeBoth), new MemoryConnection(ab.stream, ba.stream, closeBoth)];
}
