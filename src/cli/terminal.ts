/**
 * The CLI's only contact with the process: stdout, stderr, stdin and
 * signals, through `node:process`, which Deno and Bun both provide.
 *
 * @module
 */
import process from "node:process";

/** Writes `line` and a newline to stdout. */
export function print(line: string): void {
  process.stdout.write(line + "\n");
}

/** Writes `line` and a newline to stderr. */
export function printError(line: string): void {
  process.stderr.write(line + "\n");
}

/** Writes `text` to stderr as is. */
export function writeError(text: string): void {
  process.stderr.write(text);
}

/** Whether stdout is a terminal (Bun leaves `isTTY` undefined for pipes). */
export function stdoutIsTty(): boolean {
  return process.stdout.isTTY === true;
}

/** Whether stderr is a terminal. */
export function stderrIsTty(): boolean {
  return process.stderr.isTTY === true;
}

/** Whether stdin is a terminal. */
export function stdinIsTty(): boolean {
  return process.stdin.isTTY === true;
}

/** Reads stdin to its end, as UTF-8. */
export async function readStdin(): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of process.stdin) {
    text += typeof chunk === "string" ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
  }
  return text + decoder.decode();
}

/** Resolves once everything written to stdout and stderr so far has been handed to the OS. */
async function drainOutput(): Promise<void> {
  await Promise.all([process.stdout, process.stderr].map((stream) =>
    new Promise<void>((resolve) => {
      if (!stream.write("", () => resolve())) stream.once("drain", () => resolve());
    })
  ));
}

/** A wait for SIGINT or SIGTERM; `dispose()` removes the listeners so they keep nothing alive. */
export interface SignalWait {
  /** Resolves with the name of the first signal received. */
  readonly received: Promise<"SIGINT" | "SIGTERM">;
  /** Calls `handler` on each later signal too (a second Ctrl-C). */
  onRepeat(handler: (signal: string) => void): void;
  /** Stops listening. */
  dispose(): void;
}

/** Starts listening for SIGINT and SIGTERM. */
export function waitForSignal(): SignalWait {
  let resolve!: (signal: "SIGINT" | "SIGTERM") => void;
  const received = new Promise<"SIGINT" | "SIGTERM">((r) => (resolve = r));
  let count = 0;
  let repeat: ((signal: string) => void) | undefined;
  const onInt = () => handle("SIGINT");
  const onTerm = () => handle("SIGTERM");
  const handle = (signal: "SIGINT" | "SIGTERM") => {
    if (count++ === 0) resolve(signal);
    else repeat?.(signal);
  };
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return {
    received,
    onRepeat: (handler) => (repeat = handler),
    dispose: () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
    },
  };
}

/** Exits the process with `code`, after stdout and stderr are flushed. */
export async function exit(code: number): Promise<never> {
  await drainOutput();
  process.exit(code);
}

/** The process's command-line arguments after the script. */
export function argv(): string[] {
  return process.argv.slice(2);
}

/** An environment variable, or undefined. */
export function env(name: string): string | undefined {
  return process.env[name];
}

/** This process's id. */
export const pid: number = process.pid;

/** Ignore EPIPE on stdout: `ipcbus listen x | head -1` ends quietly when head exits. */
export function exitQuietlyOnClosedStdout(): void {
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
}
