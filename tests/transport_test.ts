import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, statSync } from "node:fs";
import {
  AddressInUseError,
  ConnectError,
  dial,
  FrameDecoderStream,
  FrameEncoderStream,
  listen,
  memoryConnectionPair,
} from "../mod.ts";
import type { Connection, Listener } from "../mod.ts";
import { byteChannel } from "../src/transport/byte_channel.ts";
import { decodeCbor, encodeCbor } from "../src/codec/cbor.ts";
import { frameBytes, FrameParser } from "../src/codec/frame_parser.ts";
import { Child, currentRuntime, type Runtime, runtimes, tempDir, until, within } from "./_helpers.ts";

const NAME: Record<Runtime, string> = { deno: "Deno", bun: "Bun" };
const OTHER: Runtime = currentRuntime === "deno" ? "bun" : "deno";

/** Starts tests/fixtures/echo_server.ts and waits until it accepts. */
async function startServer(runtime: Runtime, path: string, maxFrameBytes?: number): Promise<Child> {
  const args = maxFrameBytes === undefined ? [path] : [path, String(maxFrameBytes)];
  const server = new Child(runtime, "tests/fixtures/echo_server.ts", args);
  try {
    await server.waitFor(/^listening /);
  } catch (err) {
    await server.kill("SIGKILL");
    throw err;
  }
  return server;
}

/** Runs tests/fixtures/echo_client.ts to its end and returns its stdout lines. */
async function runClient(runtime: Runtime, path: string, rounds: number): Promise<string[]> {
  const client = new Child(runtime, "tests/fixtures/echo_client.ts", [path, String(rounds)]);
  try {
    const code = await within(20_000, `the ${runtime} echo client to finish`, client.exited);
    assert.equal(code, 0, `${runtime} echo client failed:\n${client.stderr}`);
    return client.lines;
  } finally {
    await client.kill("SIGKILL");
  }
}

/** Leaves a socket file at `path` that nobody accepts on: its server was SIGKILLed, so it could not clean up. */
async function deadSocket(runtime: Runtime, path: string): Promise<void> {
  const server = await startServer(runtime, path);
  await server.kill("SIGKILL");
  assert.ok(lstatSync(path).isSocket(), "the killed server left its socket file");
}

async function encodeFrame(value: unknown): Promise<Uint8Array> {
  const [chunk] = await Array.fromAsync(ReadableStream.from([value]).pipeThrough(new FrameEncoderStream()));
  return chunk;
}

/** An in-process client that sends and receives frames over `dial`. */
async function framedDial(path: string) {
  const conn = await dial(path);
  const writer = conn.writable.getWriter();
  const reader = conn.readable.pipeThrough(new FrameDecoderStream()).getReader();
  return {
    send: async (value: unknown) => await writer.write(await encodeFrame(value)),
    next: async () => (await within(5000, "a frame", reader.read())).value,
    close: () => conn.close(),
  };
}

/** Runs `body` with both ends of a connection to a fresh listener, then closes them, the listener and its directory. */
async function withSocketPair(body: (client: Connection, served: Connection) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const listener = await listen(`${dir.path}/c.sock`);
  try {
    const accepted = listener[Symbol.asyncIterator]().next();
    const client = await dial(listener.path);
    const served = (await within(5000, "the accept", accepted)).value as Connection;
    try {
      await body(client, served);
    } finally {
      await client.close();
      await served.close();
    }
  } finally {
    await listener.close();
    dir.remove();
  }
}

/** Reads `conn` until it ends or errors, within 5 s: the server closed it. */
async function drainUntilClosed(conn: Connection): Promise<void> {
  await within(
    5000,
    "the server to close the connection",
    (async () => {
      try {
        for await (const _ of conn.readable);
      } catch {
        // Reset by a server that closed with our bytes unread: closed all the same.
      }
    })(),
  );
}

function lineCount(child: Child, prefix: string): number {
  return child.lines.filter((line) => line.startsWith(prefix)).length;
}

/** Waits for the `n`th stdout line starting with `prefix`; fails at once if the child exits first. */
async function nthLine(child: Child, prefix: string, n: number, ms = 15_000): Promise<string> {
  await until(ms, `line ${n} starting "${prefix}"`, () => {
    if (lineCount(child, prefix) >= n) return true;
    if (child.process.exitCode !== null || child.process.signalCode !== null) {
      throw new Error(`Child exited before line ${n} starting "${prefix}":\n${child.stderr}`);
    }
    return false;
  });
  return child.lines.filter((line) => line.startsWith(prefix))[n - 1];
}

// --- Frames between processes ---

for (const runtime of runtimes) {
  test(`A ${NAME[runtime]} echo server and two ${NAME[runtime]} clients in other processes exchange frames both ways`, async () => {
    const dir = tempDir();
    const path = `${dir.path}/echo.sock`;
    const server = await startServer(runtime, path);
    try {
      const [a, b] = await Promise.all([runClient(runtime, path, 20), runClient(runtime, path, 20)]);
      for (const lines of [a, b]) {
        assert.ok(lines.includes(`greeting ${runtime}`), lines.join("\n"));
        assert.ok(lines.includes(`echoed 261 from ${runtime}`), lines.join("\n"));
      }
    } finally {
      await server.kill();
      dir.remove();
    }
  });
}

for (const [serverRuntime, clientRuntime] of [["deno", "bun"], ["bun", "deno"]] as const) {
  test(`A ${NAME[serverRuntime]} server and a ${NAME[clientRuntime]} client exchange frames both ways`, async () => {
    const dir = tempDir();
    const path = `${dir.path}/cross.sock`;
    const server = await startServer(serverRuntime, path);
    try {
      const lines = await runClient(clientRuntime, path, 20);
      assert.ok(lines.includes(`greeting ${serverRuntime}`), lines.join("\n"));
      assert.ok(lines.includes(`echoed 261 from ${clientRuntime}`), lines.join("\n"));
    } finally {
      await server.kill();
      dir.remove();
    }
  });
}

for (const runtime of runtimes) {
  test(`A ${NAME[runtime]} server closes only the connection that sent an oversized or garbage frame, with a typed error, and keeps serving`, async () => {
    const dir = tempDir();
    const path = `${dir.path}/strict.sock`;
    const server = await startServer(runtime, path, 4 * 1024 * 1024);
    try {
      const good = await framedDial(path);
      assert.deepEqual(await good.next(), { server: runtime });
      const bad = [
        {
          bytes: [0x7f, 0xff, 0xff, 0xff, 1, 2, 3],
          report: "conn-error FrameTooLargeError frame_too_large " +
            "Cannot decode frame: declared length 2147483647 exceeds maxFrameBytes 4194304",
        },
        {
          bytes: [0, 0, 0, 3, 0xff, 0xff, 0xff],
          report: "conn-error ProtocolError protocol_error Cannot decode frame",
        },
      ];
      for (const [i, { bytes, report }] of bad.entries()) {
        const conn = await dial(path);
        await conn.writable.getWriter().write(new Uint8Array(bytes));
        await drainUntilClosed(conn);
        await conn.close();
        const line = await nthLine(server, "conn-error", i + 1);
        assert.ok(line.startsWith(report), line);
        await good.send({ still: "served", after: i });
        assert.deepEqual(await good.next(), { still: "served", after: i });
      }
      const lines = await runClient(OTHER, path, 2);
      assert.ok(lines.includes(`echoed 27 from ${OTHER}`), lines.join("\n"));
      await good.close();
    } finally {
      await server.kill();
      dir.remove();
    }
  });
}

for (const runtime of runtimes) {
  test(`A ${NAME[runtime]} server answers every frame of a client that closed its writable after sending`, async () => {
    const dir = tempDir();
    const path = `${dir.path}/half.sock`;
    const server = await startServer(runtime, path);
    try {
      const conn = await dial(path);
      const values = Array.from({ length: 1000 }, (_, i) => ({ i, pad: "p".repeat(1000) }));
      const replies = Array.fromAsync(conn.readable.pipeThrough(new FrameDecoderStream()));
      await within(
        10_000,
        "every frame to be written",
        ReadableStream.from(values).pipeThrough(new FrameEncoderStream()).pipeTo(conn.writable),
      );
      assert.deepEqual(await within(10_000, "every reply and the end of the stream", replies), [
        { server: runtime },
        ...values,
      ]);
      await conn.close();
    } finally {
      await server.kill();
      dir.remove();
    }
  });
}

// --- The socket file ---

for (const runtime of runtimes) {
  test(`listen replaces the stale socket file of a SIGKILLed ${NAME[runtime]} server`, async () => {
    const dir = tempDir();
    const path = `${dir.path}/stale.sock`;
    let listener: Listener | undefined;
    try {
      await deadSocket(runtime, path);
      listener = await listen(path);
      const accepted = listener[Symbol.asyncIterator]().next();
      const client = await dial(path);
      const { value: served } = await within(5000, "the new listener to accept", accepted);
      await (served as Connection).writable.getWriter().write(new Uint8Array([42]));
      const { value } = await within(5000, "a byte", client.readable.getReader().read());
      assert.deepEqual(value, new Uint8Array([42]));
      await client.close();
      await (served as Connection).close();
    } finally {
      await listener?.close();
      dir.remove();
    }
  });
}

for (const runtime of runtimes) {
  test(`listen rejects with AddressInUseError while a ${NAME[runtime]} server in another process accepts, and leaves it serving`, async () => {
    const dir = tempDir();
    const path = `${dir.path}/taken.sock`;
    const server = await startServer(runtime, path);
    try {
      const inode = lstatSync(path).ino;
      await assert.rejects(listen(path), (err: unknown) => {
        assert.ok(err instanceof AddressInUseError);
        assert.equal(err.code, "address_in_use");
        assert.ok(err.message.includes(path), err.message);
        return true;
      });
      assert.equal(lstatSync(path).ino, inode, "the live server's socket file is untouched");
      const client = await framedDial(path);
      assert.deepEqual(await client.next(), { server: runtime });
      await client.send("still mine");
      assert.equal(await client.next(), "still mine");
      await client.close();
    } finally {
      await server.kill();
      dir.remove();
    }
  });
}

test("listen rejects with AddressInUseError when a file that is not a socket is in the way, and keeps the file", async () => {
  const dir = tempDir();
  const path = `${dir.path}/plain-file`;
  try {
    mkdirSync(path);
    await assert.rejects(listen(path), AddressInUseError);
    assert.ok(statSync(path).isDirectory());
  } finally {
    dir.remove();
  }
});

test("listen creates the socket file with mode 0600 by default and honours the mode option", async () => {
  const dir = tempDir();
  try {
    const byDefault = await listen(`${dir.path}/default.sock`);
    const shared = await listen(`${dir.path}/shared.sock`, { mode: 0o660 });
    assert.equal(statSync(byDefault.path).mode & 0o777, 0o600);
    assert.equal(statSync(shared.path).mode & 0o777, 0o660);
    await byDefault.close();
    await shared.close();
  } finally {
    dir.remove();
  }
});

test("listen throws RangeError for a mode that is not permission bits, before binding", async () => {
  const dir = tempDir();
  try {
    for (const mode of [-1, 0o1000, 1.5, NaN, "600" as unknown as number]) {
      const path = `${dir.path}/bad-mode.sock`;
      await assert.rejects(listen(path, { mode }), RangeError, `mode ${String(mode)}`);
      assert.equal(existsSync(path), false);
    }
  } finally {
    dir.remove();
  }
});

test("listen creates a missing parent directory with mode 0700 and leaves an existing one alone", async () => {
  const dir = tempDir();
  try {
    const listener = await listen(`${dir.path}/made/deeper/s.sock`);
    assert.equal(statSync(`${dir.path}/made`).mode & 0o777, 0o700);
    assert.equal(statSync(`${dir.path}/made/deeper`).mode & 0o777, 0o700);
    await listener.close();
    mkdirSync(`${dir.path}/mine`, { mode: 0o750 });
    const inMine = await listen(`${dir.path}/mine/s.sock`);
    assert.equal(statSync(`${dir.path}/mine`).mode & 0o777, 0o750);
    await inMine.close();
  } finally {
    dir.remove();
  }
});

test("listen and dial reject a path over 107 bytes with RangeError before creating anything", async () => {
  const dir = tempDir();
  try {
    const parent = `${dir.path}/never`;
    const long = `${parent}/${"x".repeat(108 - parent.length - 1)}`;
    // 100 characters, but "é" is two bytes in UTF-8: the limit is on bytes.
    const wide = `${parent}/${"é".repeat(Math.ceil((108 - parent.length - 1) / 2))}`;
    for (const path of [long, wide]) {
      assert.ok(new TextEncoder().encode(path).byteLength > 107);
      await assert.rejects(listen(path), (err: unknown) => {
        assert.ok(err instanceof RangeError);
        assert.match(err.message, /bytes exceeds the OS limit of 107/);
        return true;
      });
      await assert.rejects(dial(path), RangeError);
    }
    assert.equal(existsSync(parent), false, "the parent directory was not created");
  } finally {
    dir.remove();
  }
});

test("listen binds a path of exactly 107 bytes, the longest Linux allows", async () => {
  const dir = tempDir();
  try {
    const path = `${dir.path}/${"y".repeat(107 - dir.path.length - 1)}`;
    assert.equal(new TextEncoder().encode(path).byteLength, 107);
    const listener = await listen(path);
    const accepted = listener[Symbol.asyncIterator]().next();
    const client = await dial(path);
    await within(5000, "the accept", accepted).then(({ value }) => (value as Connection).close());
    await client.close();
    await listener.close();
  } finally {
    dir.remove();
  }
});

test("Listener.close removes the socket file, and dial then fails with ConnectError", async () => {
  const dir = tempDir();
  try {
    const path = `${dir.path}/closing.sock`;
    const listener = await listen(path);
    assert.ok(existsSync(path));
    await listener.close();
    assert.equal(existsSync(path), false);
    await listener.close();
    await assert.rejects(dial(path), ConnectError);
  } finally {
    dir.remove();
  }
});

test("Listener iteration ends when the listener is closed", async () => {
  const dir = tempDir();
  try {
    const listener = await listen(`${dir.path}/ending.sock`);
    const iterating = (async () => {
      for await (const conn of listener) await conn.close();
      return "ended";
    })();
    await listener.close();
    assert.equal(await within(5000, "the iteration to end", iterating), "ended");
  } finally {
    dir.remove();
  }
});

test("dial to a missing path fails fast with ConnectError naming the path", async () => {
  const dir = tempDir();
  try {
    const path = `${dir.path}/nobody.sock`;
    // A connect timeout far beyond the wait: failing fast means not waiting for it.
    await assert.rejects(within(10_000, "dial to fail", dial(path, { timeout: 600_000 })), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, "connect_failed");
      assert.ok(err.message.includes(path), err.message);
      return true;
    });
  } finally {
    dir.remove();
  }
});

test("dial to a socket file nobody accepts on fails fast with ConnectError naming the path", async () => {
  const dir = tempDir();
  try {
    const path = `${dir.path}/dead.sock`;
    await deadSocket(OTHER, path);
    // A connect timeout far beyond the wait: failing fast means not waiting for it.
    await assert.rejects(within(10_000, "dial to fail", dial(path, { timeout: 600_000 })), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.ok(err.message.includes(path), err.message);
      return true;
    });
  } finally {
    dir.remove();
  }
});

// --- Connections ---

test("A write waiting on a full socket rejects when the peer closes, instead of hanging", async () => {
  await withSocketPair(async (client, served) => {
    // Far more than the kernel buffers hold, so this write waits for a reader that never comes.
    const writing = client.writable.getWriter().write(new Uint8Array(16 * 1024 * 1024));
    await served.close();
    // The runtime's own socket error, not within's timeout: a hanging write fails this test.
    await assert.rejects(within(5000, "the waiting write to settle", writing), (err: unknown) => {
      assert.ok(["EPIPE", "ECONNRESET"].includes((err as { code?: string }).code!), String(err));
      return true;
    });
  });
});

test("Connection.close ends the peer's readable", async () => {
  await withSocketPair(async (client, served) => {
    await served.writable.getWriter().write(new Uint8Array([1, 2, 3]));
    await served.close();
    const reader = client.readable.getReader();
    assert.deepEqual(
      (await within(5000, "the bytes sent before close", reader.read())).value,
      new Uint8Array([1, 2, 3]),
    );
    assert.equal((await within(5000, "the end of the stream", reader.read())).done, true);
  });
});

test("memoryConnectionPair carries bytes both ways and holds a writer back while nobody reads", async () => {
  const [a, b] = memoryConnectionPair();
  const writer = a.writable.getWriter();
  const chunk = new Uint8Array(1024 * 1024).fill(5);
  const first = writer.write(chunk);
  const second = writer.write(chunk);
  assert.ok(writer.desiredSize! <= 0, `desiredSize ${writer.desiredSize} with 2 MiB unread`);
  const reader = b.readable.getReader();
  let received = 0;
  while (received < 2 * chunk.byteLength) {
    const { value } = await within(5000, "a chunk", reader.read());
    assert.ok(value!.every((byte) => byte === 5));
    received += value!.byteLength;
  }
  await within(5000, "both writes to resolve", Promise.all([first, second]));
  await b.writable.getWriter().write(new Uint8Array([9]));
  assert.deepEqual((await within(5000, "the reply", a.readable.getReader().read())).value, new Uint8Array([9]));
  await a.close();
  assert.equal((await within(5000, "the end", reader.read())).done, true);
});

// --- Backpressure ---

/** What the flood writer attempts to send to a reader that does not read. */
const FLOOD_BYTES = 512 * 1024 * 1024;
/** The writer must stall below this: kernel socket buffers plus one stream high-water mark each side. */
const STALL_BOUND_BYTES = 8 * 1024 * 1024;
/** Resident memory either process may use while the flood is held back, and the writer's peak overall. */
const RSS_BOUND_BYTES = 150 * 1024 * 1024;
/** How much the paused reader's resident memory may grow while the writer fills the socket. */
const READER_GROWTH_BOUND_BYTES = 16 * 1024 * 1024;
/** The writer reports every 50 ms; this many equal reports in a row (500 ms) is a stall. */
const STALL_REPORTS = 10;

// The writer is the runtime running this file; each reader runtime is tried.
// Run under both runtimes, the suite covers all four writer/reader pairs, with
// dialled and accepted sockets on each side.
for (const readerRuntime of runtimes) {
  const writerListens = readerRuntime === currentRuntime;
  test(`A ${NAME[currentRuntime]} writer stalls against a paused ${NAME[readerRuntime]} reader without either growing, then all 512 MiB arrive intact`, async () => {
    const dir = tempDir();
    const path = `${dir.path}/flood.sock`;
    const children: Child[] = [];
    try {
      const startWriter = () =>
        new Child(currentRuntime, "tests/fixtures/flood_writer.ts", [
          writerListens ? "listen" : "dial",
          path,
          String(FLOOD_BYTES),
        ]);
      const startReader = () =>
        new Child(readerRuntime, "tests/fixtures/flood_reader.ts", [writerListens ? "dial" : "listen", path]);
      const first = writerListens ? startWriter() : startReader();
      children.push(first);
      await first.waitFor("listening");
      const second = writerListens ? startReader() : startWriter();
      children.push(second);
      const [writer, reader] = writerListens ? [first, second] : [second, first];
      await reader.waitFor("connected");
      await writer.waitFor("connected");
      reader.send("mem");
      const readerBefore = Number((await nthLine(reader, "mem ", 1)).split(" ")[1]);

      let stalledAt = 0;
      let writerRss = 0;
      await until(15_000, "the writer to stall", () => {
        if (lineCount(writer, "done") > 0) {
          throw new Error(`The writer wrote all ${FLOOD_BYTES} bytes to a reader that never read`);
        }
        if (writer.process.exitCode !== null) throw new Error(`The writer exited:\n${writer.stderr}`);
        const reports = writer.lines.filter((line) => line.startsWith("progress ")).slice(-STALL_REPORTS);
        const written = reports.map((line) => Number(line.split(" ")[1]));
        if (reports.length < STALL_REPORTS || written[0] === 0 || written.some((n) => n !== written[0])) return false;
        stalledAt = written[0];
        writerRss = Number(reports.at(-1)!.split(" ")[2]);
        return true;
      });
      reader.send("mem");
      const readerPaused = Number((await nthLine(reader, "mem ", 2)).split(" ")[1]);
      assert.ok(stalledAt < STALL_BOUND_BYTES, `writer stalled only after ${stalledAt} bytes`);
      assert.ok(writerRss < RSS_BOUND_BYTES, `writer RSS ${writerRss} while stalled`);
      assert.ok(readerPaused < RSS_BOUND_BYTES, `paused reader RSS ${readerPaused}`);
      assert.ok(
        readerPaused - readerBefore < READER_GROWTH_BOUND_BYTES,
        `paused reader grew from ${readerBefore} to ${readerPaused}`,
      );

      reader.send("resume");
      const [, sentBytes, sentDigest, , writerPeak] = (await nthLine(writer, "done ", 1, 60_000)).split(" ");
      const [, gotBytes, gotDigest] = (await nthLine(reader, "received ", 1, 60_000)).split(" ");
      assert.equal(Number(sentBytes), FLOOD_BYTES);
      assert.equal(Number(gotBytes), FLOOD_BYTES);
      assert.equal(gotDigest, sentDigest, "SHA-256 of the bytes read equals that of the bytes written");
      assert.ok(Number(writerPeak) < RSS_BOUND_BYTES, `writer peak RSS ${writerPeak}`);
      console.log(
        `flood ${currentRuntime} -> ${readerRuntime}: stalled at ${stalledAt} bytes; writer RSS ${
          mib(writerRss)
        }, peak ${mib(Number(writerPeak))}; paused reader RSS ${mib(readerBefore)} -> ${mib(readerPaused)}`,
      );
    } finally {
      for (const child of children) await child.kill("SIGKILL");
      dir.remove();
    }
  });
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

// --- The byte channel under a connection (the bus's read and write path) ---

/** Reads `conn` through its byte channel: decoded frames, and a promise of the end. */
function channelReader(conn: Connection) {
  const values: unknown[] = [];
  const parser = new FrameParser();
  let wake: (() => void) | undefined;
  let ended: (error?: unknown) => void = () => {};
  const end = new Promise<unknown>((resolve) => (ended = resolve));
  byteChannel(conn).open({
    data: (chunk, kept) => {
      parser.push(chunk, (body) => values.push(decodeCbor(body)), kept);
      wake?.();
    },
    space: () => parser.space(),
    end: (error) => ended(error ?? "end"),
  });
  return {
    values,
    end,
    /** Waits until `n` values came. */
    until: (n: number) =>
      within(
        10_000,
        `${n} frames`,
        (async () => {
          while (values.length < n) await new Promise<void>((resolve) => (wake = resolve));
        })(),
      ),
  };
}

/** Runs `body` with a byte channel of a connection to an echo server of `runtime` and a reader of it; cleans up after. */
async function withEchoChannel(
  runtime: Runtime,
  body: (
    conn: Connection,
    channel: ReturnType<typeof byteChannel>,
    reader: ReturnType<typeof channelReader>,
  ) => Promise<void>,
): Promise<void> {
  const dir = tempDir();
  const path = `${dir.path}/echo.sock`;
  const server = await startServer(runtime, path);
  try {
    const conn = await dial(path);
    await body(conn, byteChannel(conn), channelReader(conn));
    await conn.close();
  } finally {
    await server.kill();
    dir.remove();
  }
}

for (const runtime of runtimes) {
  test(`A byte channel exchanges frames large and small with a ${NAME[runtime]} echo server, in order`, async () => {
    await withEchoChannel(runtime, async (conn, channel, reader) => {
      const sent = [1, "two", new Uint8Array(300_000).fill(3), { four: [4] }, new Uint8Array(5000).fill(5), "six"];
      for (const value of sent) await channel.write(frameBytes(encodeCbor(value)));
      await reader.until(1 + sent.length);
      assert.deepEqual(reader.values, [{ server: runtime }, ...sent]);
      assert.ok(conn.readable.locked, "the stream face is locked while the channel reads");
      await channel.closeWrite();
      assert.equal(await within(5000, "the end", reader.end), "end");
    });
  });

  test(`A byte channel reads each frame whole after its read buffer shrank to idle and grew again, with a ${NAME[runtime]} echo server`, async () => {
    await withEchoChannel(runtime, async (_conn, channel, reader) => {
      await reader.until(1);
      // One frame in flight at a time, so each read holds one message: small
      // ones shrink a Deno reader's buffer to its smallest, then each size
      // class in turn overflows it, and small ones shrink it again.
      const sizes = [8, 8, 8, 8, 8, 8, 600, 8, 1500, 3000, 20_000, 9000, 8, 8, 8, 8, 8, 8, 5000, 700, 8, 8, 70_000, 8];
      const sent = sizes.map((size, i) => new Uint8Array(size).fill(i + 1));
      for (const [i, value] of sent.entries()) {
        await channel.write(frameBytes(encodeCbor(value)));
        await reader.until(2 + i);
      }
      assert.deepEqual(reader.values, [{ server: runtime }, ...sent]);
    });
  });
}

test("A paused byte channel leaves the bytes in the socket, so the writer waits, until it resumes", async () => {
  await withSocketPair(async (client, served) => {
    const channel = byteChannel(served);
    let received = 0;
    let ended: () => void = () => {};
    const end = new Promise<void>((resolve) => (ended = resolve));
    channel.pause();
    channel.open({ data: (chunk) => void (received += chunk.byteLength), end: () => ended() });
    // Far more than the kernel buffers hold: it can only all be written once the channel reads.
    const bytes = 16 * 1024 * 1024;
    const writing = byteChannel(client).write(new Uint8Array(bytes));
    const early = await Promise.race([
      writing!.then(() => "written"),
      new Promise((resolve) => setTimeout(() => resolve("pending"), 300)),
    ]);
    assert.equal(early, "pending", `the write finished while the reader was paused (${received} bytes read)`);
    channel.resume();
    await within(10_000, "the write to finish once the reader resumed", writing!);
    await byteChannel(client).closeWrite();
    await within(10_000, "the end", end);
    assert.equal(received, bytes);
  });
});

test("A byte channel over an in-memory pair carries bytes and the end, through the streams", async () => {
  const [a, b] = memoryConnectionPair();
  const reader = channelReader(b);
  await byteChannel(a).write(frameBytes(encodeCbor({ hello: 1 })));
  await reader.until(1);
  assert.deepEqual(reader.values, [{ hello: 1 }]);
  await a.close();
  assert.equal(await within(5000, "the end", reader.end), "end");
});
