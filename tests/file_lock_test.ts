import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { tryLockFile } from "../src/transport/file_lock.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const HOLDER = join(ROOT, "tests/fixtures/lock_holder.ts");
const WAIT_MS = 10_000;
/** Above Bun's default of 5 s per test, so that the bounded waits below are what fails first. */
const PROCESS_TEST = { timeout: 6 * WAIT_MS };

type Runtime = "deno" | "bun";
const HERE: Runtime = "Deno" in globalThis ? "deno" : "bun";

const COMMANDS: Record<Runtime, (path: string) => [string, string[]]> = {
  deno: (path) => [join(ROOT, "node_modules/.bin/deno"), ["run", "-A", HOLDER, path]],
  bun: (path) => [join(ROOT, "node_modules/.bin/bun"), [HOLDER, path]],
};

interface Exit {
  code: number | null;
  signal: string | null;
}

/** A lock_holder.ts child process and its first line of output. */
class Holder {
  readonly runtime: Runtime;
  readonly #child: ChildProcess;
  readonly #exited: Promise<Exit>;
  #stdout = "";
  #stderr = "";

  constructor(runtime: Runtime, path: string) {
    const [command, args] = COMMANDS[runtime](path);
    this.runtime = runtime;
    this.#child = spawn(command, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    this.#child.stdout?.setEncoding("utf8");
    this.#child.stderr?.setEncoding("utf8");
    this.#child.stdout?.on("data", (chunk: string) => this.#stdout += chunk);
    this.#child.stderr?.on("data", (chunk: string) => this.#stderr += chunk);
    this.#exited = new Promise((resolve, reject) => {
      this.#child.once("error", reject);
      // "close" rather than "exit": it comes after all output has been read.
      this.#child.once("close", (code, signal) => resolve({ code, signal }));
    });
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Resolves to "locked" or "busy"; rejects if the child exits or is silent first. */
  firstLine(): Promise<string> {
    const line = new Promise<string>((resolve) => {
      const check = () => {
        const end = this.#stdout.indexOf("\n");
        if (end < 0) return;
        this.#child.stdout?.off("data", check);
        resolve(this.#stdout.slice(0, end));
      };
      this.#child.stdout?.on("data", check);
      check();
    });
    const exit = this.#exited.then((exit) => {
      throw new Error(`${this.runtime} holder exited before answering: ${JSON.stringify(exit)}\n${this.#stderr}`);
    });
    return within(Promise.race([line, exit]), `${this.runtime} holder to answer`);
  }

  /** Closes stdin, which makes a holder release its lock, and waits for the exit. */
  stop(): Promise<Exit> {
    this.#child.stdin?.end();
    return this.exited();
  }

  /** Kills the child with SIGKILL, which it cannot catch, and waits for the exit. */
  kill(): Promise<Exit> {
    this.#child.kill("SIGKILL");
    return this.exited();
  }

  exited(): Promise<Exit> {
    return within(this.#exited, `${this.runtime} holder to exit`);
  }
}

/** Rejects if `promise` has not settled after WAIT_MS. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `body` with a fresh lock path; kills leftover holders and removes the directory afterwards. */
async function withLockPath(body: (path: string, start: (runtime: Runtime) => Holder) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "ipcbus-lock-"));
  const holders: Holder[] = [];
  const start = (runtime: Runtime) => {
    const holder = new Holder(runtime, join(dir, "channel.lock"));
    holders.push(holder);
    return holder;
  };
  try {
    await body(join(dir, "channel.lock"), start);
  } finally {
    try {
      for (const holder of holders) {
        if (holder.running) await holder.kill();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

test(
  "tryLockFile makes a child process of the same runtime get null until the lock is released",
  PROCESS_TEST,
  async () => {
    await withLockPath(async (path, start) => {
      const lock = await tryLockFile(path);
      assert.notEqual(lock, null);
      const asker = start(HERE);
      assert.equal(await asker.firstLine(), "busy");
      assert.deepEqual(await asker.exited(), { code: 0, signal: null });

      await lock?.release();
      const holder = start(HERE);
      assert.equal(await holder.firstLine(), "locked");
      assert.deepEqual(await holder.stop(), { code: 0, signal: null });
    });
  },
);

for (const [holding, asking] of [["deno", "bun"], ["bun", "deno"]] as const) {
  test(
    `tryLockFile returns null in a ${asking} process while a ${holding} process holds the lock`,
    PROCESS_TEST,
    async () => {
      await withLockPath(async (_path, start) => {
        const holder = start(holding);
        assert.equal(await holder.firstLine(), "locked");
        const asker = start(asking);
        assert.equal(await asker.firstLine(), "busy");
        assert.deepEqual(await asker.exited(), { code: 0, signal: null });

        assert.deepEqual(await holder.stop(), { code: 0, signal: null });
        const next = start(asking);
        assert.equal(await next.firstLine(), "locked");
        assert.deepEqual(await next.stop(), { code: 0, signal: null });
      });
    },
  );
}

test("tryLockFile takes a lock whose holder was killed with SIGKILL", PROCESS_TEST, async () => {
  await withLockPath(async (path, start) => {
    const holder = start(HERE);
    assert.equal(await holder.firstLine(), "locked");
    assert.equal(await tryLockFile(path), null);

    assert.deepEqual(await holder.kill(), { code: null, signal: "SIGKILL" });
    const lock = await tryLockFile(path);
    assert.notEqual(lock, null);
    await lock?.release();
  });
});

test("tryLockFile returns null for a second call on the same path in the same process", async () => {
  await withLockPath(async (path) => {
    const first = await tryLockFile(path);
    assert.notEqual(first, null);
    assert.equal(await tryLockFile(path), null);

    await first?.release();
    const again = await tryLockFile(path);
    assert.notEqual(again, null);
    await again?.release();
  });
});

test("tryLockFile creates a missing lock file with mode 0600", async () => {
  await withLockPath(async (path) => {
    const lock = await tryLockFile(path);
    assert.equal(lock?.path, path);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    await lock?.release();
  });
});

test("FileLock.release can be called twice", async () => {
  await withLockPath(async (path) => {
    const lock = await tryLockFile(path);
    await lock?.release();
    await lock?.release();
    const again = await tryLockFile(path);
    assert.notEqual(again, null);
    await again?.release();
  });
});
