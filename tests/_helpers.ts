/** Shared test plumbing: temp dirs, runtime binaries, child processes with bounded waits. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runtimeName } from "./fixtures/runtime_name.ts";

export const repoRoot: string = fileURLToPath(new URL("../", import.meta.url));
export const runtimes = ["deno", "bun"] as const;
export type Runtime = typeof runtimes[number];
export const currentRuntime: Runtime = runtimeName;

export function runtimeBin(runtime: Runtime): string {
  return join(repoRoot, "node_modules", ".bin", runtime);
}

/** A fresh temporary directory under the OS temp dir, removed by `remove()`. */
export function tempDir(prefix = "ipcbus-test-"): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Resolves or rejects within `ms`, whichever first; the timer never outlives the race. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every few ms until it returns true, at most `ms` in total. */
export async function until(ms: number, what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A child process running a TypeScript file, with its stdout split into lines. */
export class Child {
  readonly process: ChildProcess;
  readonly lines: string[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;
  #waiters: Array<() => void> = [];

  constructor(runtime: Runtime, script: string, args: string[] = [], env: Record<string, string> = {}) {
    const file = join(repoRoot, script);
    const argv = runtime === "deno" ? ["run", "-A", file, ...args] : [file, ...args];
    this.process = spawn(runtimeBin(runtime), argv, {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let partial = "";
    this.process.stdout!.on("data", (chunk: Uint8Array) => {
      partial += new TextDecoder().decode(chunk);
      const parts = partial.split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.process.stderr!.on("data", (chunk: Uint8Array) => {
      this.stderr += new TextDecoder().decode(chunk);
    });
    this.exited = new Promise((resolve) => this.process.on("exit", (code) => resolve(code)));
    void this.exited.then(() => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** Waits for a stdout line matching `pattern`; fails if the child exits or `ms` pass first. */
  async waitFor(pattern: RegExp | string, ms = 15000): Promise<string> {
    const deadline = Date.now() + ms;
    let exited = false;
    void this.exited.then(() => (exited = true));
    let seen = 0;
    while (true) {
      for (; seen < this.lines.length; seen++) {
        const line = this.lines[seen];
        if (typeof pattern === "string" ? line.includes(pattern) : pattern.test(line)) return line;
      }
      if (exited) throw new Error(`Child exited before printing ${pattern}; stderr:\n${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`Timed out waiting for ${pattern}; stdout:\n${this.lines.join("\n")}\nstderr:\n${this.stderr}`);
      }
      await within(
        left + 10,
        String(pattern),
        new Promise<void>((resolve) => {
          this.#waiters.push(resolve);
          setTimeout(resolve, Math.min(left, 250));
        }),
      ).catch(() => {});
    }
  }

  /** Writes one line to the child's stdin. */
  send(line: string): void {
    this.process.stdin!.write(line + "\n");
  }

  /**
   * Sends `signal` (default SIGTERM) and waits for the exit, at most `ms`.
   * Sent with `process.kill`: Deno's `ChildProcess.kill()` closes the
   * child's stdin before it signals, and the fixtures exit cleanly when stdin
   * closes, so a child meant to die by SIGKILL could first clean up (remove
   * its socket file, release its hub) whenever the test process is
   * descheduled between the two.
   */
  async kill(signal: NodeJS.Signals = "SIGTERM", ms = 10000): Promise<number | null> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      try {
        process.kill(this.pid, signal);
      } catch (err) {
        // Gone already: it exited by itself and its exit event is on the way.
        if ((err as { code?: string }).code !== "ESRCH") throw err;
      }
    }
    try {
      return await within(ms, `exit of child ${this.pid}`, this.exited);
    } catch (err) {
      this.process.kill("SIGKILL");
      throw err;
    }
  }
}

/** Resolves with the detail of the next `type` event of `target` that passes `accept`, within `ms`. */
export function nextEvent<T>(
  ms: number,
  target: EventTarget,
  type: string,
  accept: (detail: T) => boolean = () => true,
): Promise<T> {
  return within(
    ms,
    `${type} event`,
    new Promise<T>((resolve) => {
      const listener = (event: Event) => {
        const detail = (event as CustomEvent<T>).detail;
        if (!accept(detail)) return;
        target.removeEventListener(type, listener);
        resolve(detail);
      };
      target.addEventListener(type, listener);
    }),
  );
}
