/**
 * A fixture in a child process, driven by JSON commands on stdin and observed
 * through JSON lines on stdout: the shared half of the bus process tests and
 * the load tests. Every command has an `op` and a `seq`; the fixture answers
 * `{ ev: "done", seq, result }` or `{ ev: "failed", seq, error }`.
 */
import process from "node:process";
import { Child, type Runtime, until } from "./_helpers.ts";

// deno-lint-ignore no-explicit-any
export type ChildEvent = { ev: string } & Record<string, any>;

/** A child running a JSON-lines fixture. */
export class JsonChild {
  readonly child: Child;
  readonly runtime: Runtime;
  ready: ChildEvent = { ev: "starting" };
  readonly #wait: number;
  #events: ChildEvent[] = [];
  #parsed = 0;
  #seq = 0;

  /**
   * @param wait Default cap, in ms, of every wait on this child.
   */
  constructor(runtime: Runtime, script: string, args: string[], wait: number) {
    this.runtime = runtime;
    this.child = new Child(runtime, script, args);
    this.#wait = wait;
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
  events(accept: (e: ChildEvent) => boolean = () => true): ChildEvent[] {
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
  async next(what: string, accept: (e: ChildEvent) => boolean, ms = this.#wait): Promise<ChildEvent> {
    let found: ChildEvent | undefined;
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

  /** Writes a command without waiting for it; returns its sequence number for {@linkcode answer}. */
  post(op: string, args: Record<string, unknown> = {}): number {
    const seq = ++this.#seq;
    this.child.send(JSON.stringify({ op, seq, ...args }));
    return seq;
  }

  /** Waits for the `done` or `failed` event of command `seq`. */
  answer(seq: number, ms = this.#wait): Promise<ChildEvent> {
    return this.next(
      `the answer to command #${seq}`,
      (e) => (e.ev === "done" || e.ev === "failed") && e.seq === seq,
      ms,
    );
  }

  /** Waits for the answer to command `seq` and returns its result; throws if the command failed. */
  async result(seq: number, ms = this.#wait): Promise<ChildEvent["result"]> {
    const answer = await this.answer(seq, ms);
    if (answer.ev === "failed") {
      throw new Error(
        `${answer.op ?? `#${seq}`} failed in ${this.runtime} child ${this.pid}: ${JSON.stringify(answer.error)}`,
      );
    }
    return answer.result;
  }

  /** Runs a command; returns its `done` or `failed` event. */
  run(op: string, args: Record<string, unknown> = {}, ms = this.#wait): Promise<ChildEvent> {
    return this.answer(this.post(op, args), ms);
  }

  /** Runs a command and returns its result; throws if it failed. */
  cmd(op: string, args: Record<string, unknown> = {}, ms = this.#wait): Promise<ChildEvent["result"]> {
    return this.result(this.post(op, args), ms);
  }

  /**
   * Sends `signal` with `process.kill`: Deno's `ChildProcess.kill("SIGSTOP")` takes the child for
   * dead, closes its stdin and makes a later `kill("SIGCONT")` a no-op.
   */
  signal(signal: "SIGSTOP" | "SIGCONT" | "SIGKILL"): void {
    if (this.running) process.kill(this.pid, signal);
  }

  /** Resumes the child if stopped and kills it. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.signal("SIGCONT");
    await this.child.kill("SIGKILL");
  }
}
