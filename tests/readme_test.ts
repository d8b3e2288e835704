/**
 * The README's runnable code blocks, run as a reader would run them.
 *
 * Convention: every ```ts block in README.md is preceded by an HTML comment
 * that says what it is. `<!-- readme-test: fragment -->` marks a block that
 * is not a program (an import line, a piece of configuration);
 * `<!-- readme-test: run FILE … -->` marks one that is saved as FILE and run.
 * A `ts` block without either comment fails this test, so a new snippet is
 * a decision. The Deno command for FILE is the README's own `deno run …
 * FILE` line, flags and all; Bun runs `bun FILE`. The code is run as written.
 *
 * Each run is in a fresh project outside the checkout, set up as "Install
 * from a checkout" says: for Deno, the README's deno.json (`<!-- readme-test:
 * deno.json for a checkout -->`, `/path/to/ipcbus` being this checkout); for
 * Bun, the package under its JSR name `@ipcbus/ipcbus` in node_modules (a
 * link to the checkout: what `bun add @ipcbus/ipcbus@<tarball>` installs,
 * without packing). `/tmp/app.sock` is replaced by a socket in that directory, in the code and
 * in the flags alike, so that parallel runs do not collide; channels get
 * their own `XDG_RUNTIME_DIR`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { repoRoot, type Runtime, runtimeBin, runtimes, tempDir, within } from "./_helpers.ts";

const WAIT = 30_000;
const PROCESS_TEST = { timeout: 180_000 };

interface Snippet {
  file: string;
  code: string;
  note: string;
}

const readme = readFileSync(join(repoRoot, "README.md"), "utf8");

/** Every ```ts block with the comment before it; fails on a block without one. */
function snippets(): Snippet[] {
  const found: Snippet[] = [];
  const block = /(?:<!-- readme-test: ([^>]*?) -->\s*\n)?```ts\n([\s\S]*?)```/g;
  for (const m of readme.matchAll(block)) {
    const marker = m[1];
    if (marker === undefined) throw new Error(`README ts block without a readme-test comment:\n${m[2]}`);
    if (marker.startsWith("fragment")) continue;
    const run = /^run (\S+)(.*)$/.exec(marker);
    if (!run) throw new Error(`Unknown readme-test comment: ${marker}`);
    found.push({ file: run[1]!, note: run[2]!.trim(), code: m[2]! });
  }
  return found;
}

function snippet(file: string): Snippet {
  const found = snippets().find((s) => s.file === file);
  assert.ok(found, `README has no snippet marked "run ${file}"`);
  return found;
}

/** The README's `deno run … FILE` command line, as its argument list. */
function denoArgs(file: string): string[] {
  const line = readme.split("\n").find((l) => l.startsWith("deno run ") && l.trim().endsWith(` ${file}`));
  assert.ok(line, `README gives no "deno run … ${file}" command`);
  return line.trim().split(/\s+/).slice(1);
}

/** A snippet's process, with its output gathered. */
class Run {
  readonly process: ChildProcess;
  stdout = "";
  stderr = "";
  readonly done: Promise<number | null>;

  constructor(runtime: Runtime, dir: string, file: string, env: Record<string, string>) {
    const args = runtime === "deno"
      ? denoArgs(file).map((a) => a.replaceAll("/tmp/app.sock", join(dir, "app.sock")))
      : [
        file,
      ];
    this.process = spawn(runtimeBin(runtime), args, { cwd: dir, env: { ...process.env, ...env } });
    this.process.stdout!.on("data", (chunk: Uint8Array) => (this.stdout += new TextDecoder().decode(chunk)));
    this.process.stderr!.on("data", (chunk: Uint8Array) => (this.stderr += new TextDecoder().decode(chunk)));
    this.done = new Promise((resolve) => this.process.once("close", (code) => resolve(code)));
  }

  get output(): string {
    return `stdout:\n${this.stdout}\nstderr:\n${this.stderr}`;
  }

  /** Waits for stdout to match, failing if the process ends or `ms` pass first. */
  async waitFor(pattern: RegExp, ms = WAIT): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    let ended = false;
    void this.done.then(() => (ended = true));
    while (Date.now() < deadline) {
      const m = pattern.exec(this.stdout);
      if (m) return m;
      if (ended) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`No ${pattern} in the output of ${this.process.pid}; ${this.output}`);
  }

  /** Waits for the process to exit by itself, and checks it exited 0. */
  async exitsCleanly(what: string): Promise<void> {
    const code = await within(WAIT, `${what} to exit by itself`, this.done).catch((err) => {
      throw new Error(`${err.message}; ${this.output}`);
    });
    assert.equal(code, 0, `${what} exited with ${code}; ${this.output}`);
  }

  stop(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill("SIGKILL");
  }
}

/** The README's deno.json for a project that uses a checkout, pointed at this one. */
function denoConfig(): string {
  const m = /<!-- readme-test: deno\.json for a checkout -->\s*\n```json\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, "README has no deno.json marked for a checkout");
  return m[1]!.replaceAll("/path/to/ipcbus", repoRoot.replace(/\/$/, ""));
}

/** Saves the snippet for `runtime` in a fresh project directory (see the module comment). */
function saveSnippet(runtime: Runtime, s: Snippet): { dir: string; remove(): void } {
  const project = tempDir("ipcbus-readme-");
  const dir = project.path;
  if (runtime === "deno") {
    writeFileSync(join(dir, "deno.json"), denoConfig());
  } else {
    mkdirSync(join(dir, "node_modules", "@ipcbus"), { recursive: true });
    symlinkSync(repoRoot, join(dir, "node_modules", "@ipcbus", "ipcbus"));
  }
  writeFileSync(join(dir, s.file), s.code.replaceAll("/tmp/app.sock", join(dir, "app.sock")));
  const remove = () => {
    // The link goes first, so that removing the project can never walk into the checkout.
    if (runtime === "bun") unlinkSync(join(dir, "node_modules", "@ipcbus", "ipcbus"));
    project.remove();
  };
  return { dir, remove };
}

test("every ts block in the README is marked as a fragment or as a program to run", () => {
  const files = snippets().map((s) => s.file);
  assert.deepEqual(files.sort(), [
    "alert_errors.ts",
    "channel.ts",
    "drain.ts",
    "headers.ts",
    "patterns.ts",
    "quickstart.ts",
    "reconnect.ts",
    "types.ts",
  ]);
});

for (const runtime of runtimes) {
  test(
    `the Quick start runs on ${runtime} as written, prints the reply and the time, and exits by itself`,
    PROCESS_TEST,
    async () => {
      const saved = saveSnippet(runtime, snippet("quickstart.ts"));
      const run = new Run(runtime, saved.dir, "quickstart.ts", {});
      try {
        await run.exitsCleanly("the Quick start");
        assert.match(run.stdout, /seen:\s*\{\s*n: 1,?\s*\},?\s*\} from peer 0/);
        assert.match(run.stdout, /^\d{13}$/m);
      } finally {
        run.stop();
        saved.remove();
      }
    },
  );

  test(
    `the channel snippet started three times at once on ${runtime} gets ids 1, 2, 3, survives its host's SIGKILL, and every survivor exits by itself`,
    PROCESS_TEST,
    async () => {
      const saved = saveSnippet(runtime, snippet("channel.ts"));
      const env = { XDG_RUNTIME_DIR: join(saved.dir, "run") };
      mkdirSync(env.XDG_RUNTIME_DIR, { mode: 0o700 });
      const members = [0, 1, 2].map(() => new Run(runtime, saved.dir, "channel.ts", env));
      try {
        const joined = await Promise.all(members.map((m) => m.waitFor(/^member (\d+)( \(hosting the hub\))?/m)));
        assert.deepEqual(joined.map((m) => Number(m[1])).sort(), [1, 2, 3]);
        const hosts = members.filter((_, i) => joined[i]![2] !== undefined);
        assert.equal(hosts.length, 1, members.map((m) => m.output).join("\n"));
        const host = hosts[0]!;
        process.kill(host.process.pid!, "SIGKILL");
        await within(WAIT, "the host to die", host.done);
        const survivors = members.filter((m) => m !== host);
        await Promise.all(survivors.map((m) => m.waitFor(/^hub now in member \d+/m)));
        await Promise.all(survivors.map((m) => m.exitsCleanly("a channel member")));
      } finally {
        for (const m of members) m.stop();
        saved.remove();
      }
    },
  );

  // The section "Reconnect, drain, patterns, headers and types": each snippet is a whole program.
  const apiSnippets: Array<[file: string, expected: RegExp[]]> = [
    ["reconnect.ts", [/retrying: true/, /hub got: queued while away/, /back as peer 1 after \d+/]],
    ["drain.ts", [/^done$/m, /worker closed/]],
    ["patterns.ts", [
      /exact: jobs\.new/,
      /one token: jobs\.done/,
      /one or more: jobs\.done\.late/,
      /stream: jobs\.new\nstream: jobs\.done\nstream: jobs\.done\.late/,
    ]],
    ["headers.ts", [/job \{\s*n: 1,?\s*\} trace 7f3a/, /text\/html 7f3a <p>hi<\/p>/]],
    ["types.ts", [/job 42/, /<P>3<\/P>/]],
    ["alert_errors.ts", [/error event: tick failed/]],
  ];
  for (const [file, expected] of apiSnippets) {
    test(
      `the README's ${file} runs on ${runtime} as written, prints what it says, and exits by itself`,
      PROCESS_TEST,
      async () => {
        const saved = saveSnippet(runtime, snippet(file));
        const run = new Run(runtime, saved.dir, file, {});
        try {
          await run.exitsCleanly(file);
          for (const pattern of expected) assert.match(run.stdout, pattern, run.output);
        } finally {
          run.stop();
          saved.remove();
        }
      },
    );
  }
}
