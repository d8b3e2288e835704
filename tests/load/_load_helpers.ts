/**
 * Plumbing of the load tests: children running tests/fixtures/load_peer.ts
 * and load_hub.ts driven by JSON lines, readings of a child's memory and
 * file descriptors from /proc, and a scenario that stops everything it
 * started (SIGCONT first, then SIGKILL) whatever happens.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { connect, type Peer } from "../../mod.ts";
import { type Runtime, tempDir } from "../_helpers.ts";
import { type ChildEvent, JsonChild } from "../_json_child.ts";

/** Every wait is capped; this is the default cap. */
export const WAIT = 30_000;
/** Above Bun's default of 5 s per test, so that the bounded waits inside are what fails first. */
export const LOAD_TEST = { timeout: 120_000 };

export type LoadEvent = ChildEvent;

/** A load fixture in a child process (tests/fixtures/load_peer.ts or load_hub.ts). */
export class LoadProcess extends JsonChild {
  constructor(runtime: Runtime, script: string, args: string[]) {
    super(runtime, script, args, WAIT);
  }
}

/** Resident set size of process `pid` in bytes, from /proc/<pid>/status. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(status.match(/^VmRSS:\s+(\d+) kB/m)![1]) * 1024;
}

/** Open file descriptors of process `pid`: the entries of /proc/<pid>/fd. */
export function fdCountOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Mebibytes, one decimal. */
export function mib(bytes: number): number {
  return Math.round(bytes / 1024 / 1024 * 10) / 10;
}

/** One test's world: a temp socket path and everything started in it, all stopped by {@linkcode cleanup}. */
export class LoadScenario {
  readonly dir = tempDir("ipcbus-load-");
  readonly path = `${this.dir.path}/bus.sock`;
  readonly children: LoadProcess[] = [];
  readonly #closers: Array<() => Promise<void>> = [];

  /** Starts a load_peer.ts child; resolves once it is connected. */
  async spawnPeer(runtime: Runtime, options: Record<string, unknown> = {}): Promise<LoadProcess> {
    const child = new LoadProcess(runtime, "tests/fixtures/load_peer.ts", [this.path, JSON.stringify(options)]);
    this.children.push(child);
    child.ready = await child.next("ready", (e) => e.ev === "ready" || e.ev === "connect_failed");
    if (child.ready.ev !== "ready") throw new Error(`Load peer could not connect: ${JSON.stringify(child.ready)}`);
    return child;
  }

  /** Starts a load_hub.ts child; resolves once it serves. */
  async spawnHub(runtime: Runtime, options: Record<string, unknown> = {}): Promise<LoadProcess> {
    const child = new LoadProcess(runtime, "tests/fixtures/load_hub.ts", [this.path, JSON.stringify(options)]);
    this.children.push(child);
    child.ready = await child.next("ready", (e) => e.ev === "ready");
    return child;
  }

  /** A peer in the test process, closed by {@linkcode cleanup}. */
  async connect(options: Record<string, unknown> = {}): Promise<Peer> {
    const peer = await connect({ path: this.path, ...options });
    this.#closers.push(() => peer.close());
    return peer;
  }

  /** Registers something to close at cleanup, after the children are stopped. */
  onCleanup(close: () => Promise<void>): void {
    this.#closers.push(close);
  }

  async cleanup(): Promise<void> {
    try {
      await Promise.all(this.children.map((child) => child.stop()));
      for (const close of this.#closers.reverse()) await close().catch(() => {});
    } finally {
      this.dir.remove();
    }
  }
}

/** Runs `body` in a fresh scenario and always cleans up after it. */
export async function loadScenario(body: (s: LoadScenario) => Promise<void>): Promise<void> {
  const s = new LoadScenario();
  try {
    await body(s);
  } finally {
    await s.cleanup();
  }
}
