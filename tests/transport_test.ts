import { test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { AddressInUseError, ConnectError, dial, FrameDecoderStream, FrameEncoderStream, listen } from "../mod.ts";
import { tempDir } from "./_helpers.ts";

test("listen and dial exchange frames in one process", async () => {
  const dir = tempDir();
  const path = `${dir.path}/s.sock`;
  const listener = await listen(path);
  try {
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const served = (async () => {
      for await (const conn of listener) {
        await conn.readable.pipeTo(conn.writable);
        return;
      }
    })();
    const conn = await dial(path);
    const writer = conn.writable.getWriter();
    const encoded = await Array.fromAsync(ReadableStream.from([{ hello: 1 }]).pipeThrough(new FrameEncoderStream()));
    await writer.write(encoded[0]);
    const reader = conn.readable.pipeThrough(new FrameDecoderStream()).getReader();
    const { value } = await reader.read();
    assert.deepEqual(value, { hello: 1 });
    await writer.close();
    await served;
    await conn.close();
    await assert.rejects(listen(path), AddressInUseError);
  } finally {
    await listener.close();
    dir.remove();
  }
  await assert.rejects(dial(path), ConnectError);
});
