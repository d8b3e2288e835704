/**
 * Plumbing of the load tests: children running tests/fixtures/load_peer.ts
 * and load_hub.ts driven by JSON lines, readings of a child's memory and
 * file descriptors from /proc, and a scenario that stops everything it
 * started (SIGCONT first, then SIGKILL) whatever happens.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { connect, type Peer } from "../../mod.ts";
import { Child, type Runtime, tempDir, until } from "../_helpers.ts";

/** Every wait is capped; this is the default cap. */
export const WAIT = 30_000;
/** Above Bun's default of 5 s per test, so that the bounded waits inside are what fails first. */
export const LOAD_TEST = { timeout: 120_000 };

// deno-lint-ignore no-explicit-any
export type LoadEvent = { ev: string } & Record<string, any>;

/** A fixture in a child process, driven by JSON commands on stdin, observed through JSON lines on stdout. */
export class LoadProcess {
  readonly child: Child;
  readonly runtime: Runtime;
  ready: LoadEvent = { ev: "starting" };
  #events: LoadEvent[] = [];
  #parsed = 0;
  #seq = 0;

  constructor(runtime: Runtime, script: string, args: string[]) {
    this.runtime = runtime;
    this.child = new Child(runtime, script, args);
  }

  get id(): number {
    return this.ready.id;
  }

  get pid(): number {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.process.exitCode === null && this.child.process.signalCode === null;
  }

  /** Every event printed so far that passes `accept`. */
  events(accept: (e: LoadEvent) => boolean = () => true): LoadEvent[] {
    for (; this.#parsed < this.child.lines.length; this.#parsed++) {
      try {
        const event = JSON.parse(this.child.lines[this.#parsed]);
        if (event !== null && typeof event === "object" && typeof event.ev === "string") this.#events.push(event);
      } catch {
        // Not one of ours: a runtime warning.
      }
    }
    return this.#events.filter(accept);
  }

  /** Waits for the first event that passes `accept`; fails if the child exits or `ms` pass first. */
  async next(what: string, accept: (e: LoadEvent) => boolean, ms = WAIT): Promise<LoadEvent> {
    let found: LoadEvent | undefined;
    await until(ms, `${what} from ${this.runtime} child ${this.pid}`, () => {
      found = this.events(accept)[0];
      if (found || this.running) return found !== undefined;
      const { exitCode, signalCode } = this.child.process;
      throw new Error(
        `${this.runtime} child ${this.pid} exited (${
          exitCode ?? signalCode
        }) before ${what}; stderr:\n${this.child.stderr}`,
      );
    });
    return found!;
  }

  /** Writes a command without waiting; returns its sequence number for {@linkcode result}. */
  post(op: string, args: Record<string, unknown> = {}): number {
    const seq = ++this.#seq;
    this.child.send(JSON.stringify({ op, seq, ...args }));
    return seq;
  }

  /** Waits for the answer to command `seq` and returns its result; throws if the command failed. */
  async result(seq: number, ms = WAIT): Promise<LoadEvent["result"]> {
    const answer = await this.next(
      `the answer to command #${seq}`,
      (e) => (e.ev === "done" || e.ev === "failed") && e.seq === seq,
      ms,
    );
    if (answer.ev === "failed") {
      throw new Error(`${answer.op} failed in ${this.runtime} child ${this.pid}: ${JSON.stringify(answer.error)}`);
    }
    return answer.result;
  }

  /** Runs a command and returns its result. */
  cmd(op: string, args: Record<string, unknown> = {}, ms = WAIT): Promise<LoadEvent["result"]> {
    return this.result(this.post(op, args), ms);
  }

  /**
   * Sends `signal` with `process.kill`: Deno's `ChildProcess.kill("SIGSTOP")` takes the child for
   * dead, closes its stdin and makes a later `kill("SIGCONT")` a no-op.
   */
  signal(signal: "SIGSTOP" | "SIGCONT" | "SIGKILL"): void {
    if (this.running) process.kill(this.pid, signal);
  }

  /** Resumes the child if stopped, and kills it. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.signal("SIGCONT");
    await this.child.kill("SIGKILL");
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
