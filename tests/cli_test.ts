/**
 * The `ipcbus` command end to end: every subcommand runs as a child process
 * of the runtime running the tests (`deno test` runs cli.ts with Deno, `bun
 * test` with Bun) against a hub that is itself `cli.ts hub` in a child.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants, existsSync, openSync, readSync, renameSync } from "node:fs";
import { connect as dial } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { connect, type Peer } from "../mod.ts";
import { Child, currentRuntime, repoRoot, runtimeBin, tempDir, until, within } from "./_helpers.ts";

const WAIT = 15_000;
/** Above Bun's default of 5 s per test, so that the bounded waits below are what fails first. */
const PROCESS_TEST = { timeout: 60_000 };
const SUBCOMMANDS = ["hub", "send", "broadcast", "request", "listen", "peers", "stats", "bench", "help"];

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cli.ts args…` to its end with `input` on stdin; the child is killed if it outlives the wait. */
async function ipcbus(args: string[], input = ""): Promise<Finished> {
  const child = new Child(currentRuntime, "cli.ts", args);
  // "close", not "exit": it fires once stdout and stderr are drained too.
  const closed = new Promise<number | null>((resolve) => child.process.on("close", (code) => resolve(code)));
  child.process.stdin!.end(input);
  try {
    const code = await within(WAIT, `ipcbus ${args.join(" ")}`, closed);
    return { code, stdout: child.lines.join("\n"), stderr: child.stderr };
  } finally {
    if (child.process.exitCode === null && child.process.signalCode === null) await child.kill("SIGKILL");
  }
}

/** Starts a long-running `cli.ts args…` (hub, listen); stdin stays open so it is never read as data. */
function start(args: string[], children: Child[]): Child {
  const child = new Child(currentRuntime, "cli.ts", args);
  children.push(child);
  return child;
}

/** Kills what a test started and is still running. */
async function stopAll(children: Child[]): Promise<void> {
  await Promise.all(children.map(async (child) => {
    if (child.process.exitCode === null && child.process.signalCode === null) await child.kill("SIGKILL");
  }));
}

/**
 * Sends `signal` with `process.kill` and waits for the exit status: Deno's
 * `ChildProcess.kill()` reports the child as killed by the signal even when
 * it handles it and exits 0.
 */
async function interrupt(child: Child, signal: "SIGINT" | "SIGTERM"): Promise<number | null> {
  process.kill(child.pid, signal);
  return await within(WAIT, `exit of ${child.pid} after ${signal}`, child.exited);
}

/** Waits until the child's stderr contains `text`; fails if it exits or `ms` pass first. */
async function stderrOf(child: Child, text: string, ms = WAIT): Promise<void> {
  await within(
    ms,
    `${JSON.stringify(text)} on stderr`,
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (child.stderr.includes(text)) resolve();
        else if (child.process.exitCode !== null || child.process.signalCode !== null) {
          reject(new Error(`Child exited before printing ${text}; stderr:\n${child.stderr}`));
        } else return false;
        return true;
      };
      if (check()) return;
      const onData = () => {
        if (check()) child.process.stderr!.off("data", onData);
      };
      child.process.stderr!.on("data", onData);
      child.process.on("exit", () => setTimeout(check, 0));
    }),
  );
}

/** Starts `cli.ts hub --path <dir>/hub.sock …` and waits for its ready line. */
async function startHub(dir: string, children: Child[], extra: string[] = []): Promise<{ hub: Child; path: string }> {
  const path = join(dir, "hub.sock");
  const hub = start(["hub", "--path", path, ...extra], children);
  await hub.waitFor(/ready/, WAIT);
  return { hub, path };
}

/** Asserts one line on stderr, in the `ipcbus: <message>` form, that mentions `mention`. */
function assertOneErrorLine(stderr: string, mention: RegExp): void {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  assert.match(lines[0], /^ipcbus: /);
  assert.match(lines[0], mention);
}

test("ipcbus --help and every subcommand's --help print usage and exit 0", PROCESS_TEST, async () => {
  const runs = await Promise.all([["--help"], ...SUBCOMMANDS.map((c) => [c, "--help"])].map((args) => ipcbus(args)));
  for (const [i, run] of runs.entries()) {
    const what = i === 0 ? "ipcbus --help" : `ipcbus ${SUBCOMMANDS[i - 1]} --help`;
    assert.equal(run.code, 0, `${what} exited ${run.code}: ${run.stderr}`);
    assert.match(run.stdout, /Usage: ipcbus/, what);
    assert.equal(run.stderr, "", what);
  }
  assert.match(runs[0].stdout, /Exit codes:[\s\S]*5 {2}no responder/);
});

test("an unknown subcommand or option exits 2 with one line on stderr", PROCESS_TEST, async () => {
  const [unknown, option, missing] = await Promise.all([
    ipcbus(["frobnicate"]),
    ipcbus(["peers", "--path", "/tmp/x.sock", "--bogus"]),
    ipcbus(["send", "--path", "/tmp/x.sock", "1"]),
  ]);
  assert.equal(unknown.code, 2);
  assertOneErrorLine(unknown.stderr, /Unknown subcommand "frobnicate"/);
  assert.equal(option.code, 2);
  assertOneErrorLine(option.stderr, /--bogus/);
  assert.equal(missing.code, 2);
  assertOneErrorLine(missing.stderr, /Missing <alert>/);
});

test("request against a missing socket exits 3 with one line on stderr", PROCESS_TEST, async () => {
  const dir = tempDir();
  try {
    const run = await ipcbus(["request", "/ipcbus/echo", "1", "--path", join(dir.path, "nobody.sock")]);
    assert.equal(run.code, 3);
    assertOneErrorLine(run.stderr, /ConnectError: .*nobody\.sock/);
    assert.equal(run.stdout, "");
  } finally {
    dir.remove();
  }
});

test(
  "peers --channel on a channel with no socket or lock file exits 3 at once with one line",
  PROCESS_TEST,
  async () => {
    const dir = tempDir();
    try {
      const started = Date.now();
      const run = await ipcbus(["peers", "--channel", "nosuchchan", "--dir", dir.path]);
      assert.equal(run.code, 3);
      assertOneErrorLine(run.stderr, /ConnectError: Cannot join channel nosuchchan: no socket or lock file/);
      // Well under the 5 s join timeout it used to wait for: process start-up is all it takes.
      assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    } finally {
      dir.remove();
    }
  },
);

test("listen --help says a name is optional and hub --help describes --channel one way", PROCESS_TEST, async () => {
  const [listen, hub] = await Promise.all([ipcbus(["listen", "--help"]), ipcbus(["hub", "--help"])]);
  assert.match(listen.stdout, /every alert\s+when none is named/);
  assert.doesNotMatch(listen.stdout, /At least one alert name is needed/);
  assert.doesNotMatch(hub.stdout, /joined as a client/);
  assert.match(hub.stdout, /--channel NAME {3}host channel NAME/);
});

test("request prints the response as JSON and exits 4, 5, 6 or 8 for the typed errors", PROCESS_TEST, async () => {
  const dir = tempDir();
  const children: Child[] = [];
  try {
    const { path } = await startHub(dir.path, children);
    const [echo, fromStdin, noResponder, timeout, remote, noPeer, to0] = await Promise.all([
      ipcbus(["request", "/ipcbus/echo", '{"a":1}', "--path", path]),
      ipcbus(["request", "/ipcbus/echo", "--path", path], '{"from":"stdin"}\n'),
      ipcbus(["request", "/nope", "--path", path]),
      ipcbus(["request", "/ipcbus/delay", '{"delay":2000}', "--timeout", "100", "--path", path]),
      ipcbus(["request", "/ipcbus/delay", '{"delay":-1}', "--path", path]),
      ipcbus(["request", "/ipcbus/echo", "1", "--to", "99", "--path", path]),
      ipcbus(["request", "/ipcbus/echo", "[1,2]", "--to", "0", "--path", path]),
    ]);
    assert.equal(echo.code, 0, echo.stderr);
    assert.deepEqual(JSON.parse(echo.stdout), { a: 1 });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.deepEqual(JSON.parse(fromStdin.stdout), { from: "stdin" });
    assert.equal(noResponder.code, 5);
    assertOneErrorLine(noResponder.stderr, /NoResponderError: .*\/nope/);
    assert.equal(timeout.code, 4);
    assertOneErrorLine(timeout.stderr, /TimeoutError: .*100 ms/);
    assert.equal(remote.code, 6);
    assertOneErrorLine(remote.stderr, /RemoteError: the handler threw RangeError: Invalid delay/);
    assert.equal(noPeer.code, 8);
    assertOneErrorLine(noPeer.stderr, /NoSuchPeerError: .*99/);
    assert.equal(to0.code, 0, to0.stderr);
    assert.deepEqual(JSON.parse(to0.stdout), [1, 2]);
  } finally {
    await stopAll(children);
    dir.remove();
  }
});

test("send and broadcast reach a listen child, which prints one JSON line per alert", PROCESS_TEST, async () => {
  const dir = tempDir();
  const children: Child[] = [];
  try {
    const { hub, path } = await startHub(dir.path, children);
    const listener = start(["listen", "greet", "news", "--path", path, "--name", "listener"], children);
    const joined = await hub.waitFor(/join +peer \d+ "listener"/, WAIT);
    const listenerId = joined.match(/peer (\d+)/)![1];
    await stderrOf(listener, "listening for greet, news");

    const sent = await ipcbus(["send", "listener", "greet", '{"n":1}', "--path", path]);
    assert.equal(sent.code, 0, sent.stderr);
    const greet = JSON.parse(await listener.waitFor(/"name":"greet"/, WAIT));
    assert.deepEqual(greet.data, { n: 1 });
    // The one-shot sender joined after the listener, so it has a later id than the listener's.
    assert.ok(Number.isInteger(greet.sender) && greet.sender > Number(listenerId), `sender ${greet.sender}`);
    assert.ok(!Number.isNaN(Date.parse(greet.time)), `time ${greet.time} is not a date`);

    const broadcast = await ipcbus(["broadcast", "news", "--path", path], '{"headline":"from stdin"}');
    assert.equal(broadcast.code, 0, broadcast.stderr);
    const news = JSON.parse(await listener.waitFor(/"name":"news"/, WAIT));
    assert.deepEqual(news.data, { headline: "from stdin" });

    const byId = await ipcbus(["send", listenerId, "greet", '"by id"', "--path", path]);
    assert.equal(byId.code, 0, byId.stderr);
    assert.equal(JSON.parse(await listener.waitFor(/"by id"/, WAIT)).name, "greet");
    const missing = await ipcbus(["send", "99", "greet", "1", "--path", path]);
    assert.equal(missing.code, 8);
    assertOneErrorLine(missing.stderr, /NoSuchPeerError/);

    assert.equal(await interrupt(listener, "SIGINT"), 0);
    const lines = listener.lines.filter((l) => l.trim() !== "");
    assert.equal(lines.length, 3, `listen printed:\n${lines.join("\n")}`);
    await hub.waitFor(/leave +peer \d+ "listener"/, WAIT);
  } finally {
    await stopAll(children);
    dir.remove();
  }
});

test("listen without an alert name prints every alert", PROCESS_TEST, async () => {
  const dir = tempDir();
  const children: Child[] = [];
  try {
    const { hub, path } = await startHub(dir.path, children);
    const listener = start(["listen", "--path", path, "--name", "all"], children);
    await hub.waitFor(/join +peer \d+ "all"/, WAIT);
    await stderrOf(listener, "listening for every alert");
    for (const name of ["one", "two"]) {
      const sent = await ipcbus(["send", "all", name, `"${name}"`, "--path", path]);
      assert.equal(sent.code, 0, sent.stderr);
    }
    assert.equal(JSON.parse(await listener.waitFor(/"name":"one"/, WAIT)).data, "one");
    assert.equal(JSON.parse(await listener.waitFor(/"name":"two"/, WAIT)).data, "two");
  } finally {
    await stopAll(children);
    dir.remove();
  }
});

test("peers --json lists the connected listener and stats --json has the hub's counters", PROCESS_TEST, async () => {
  const dir = tempDir();
  const children: Child[] = [];
  try {
    const { hub, path } = await startHub(dir.path, children);
    const watching = start(["listen", "tick", "--path", path, "--name", "watcher"], children);
    await hub.waitFor(/join +peer \d+ "watcher"/, WAIT);

    const [peersJson, peersTable, statsJson, statsTable] = await Promise.all([
      ipcbus(["peers", "--json", "--path", path]),
      ipcbus(["peers", "--path", path]),
      ipcbus(["stats", "--json", "--path", path]),
      ipcbus(["stats", "--path", path]),
    ]);
    assert.equal(peersJson.code, 0, peersJson.stderr);
    const peers = JSON.parse(peersJson.stdout) as Array<Record<string, unknown>>;
    const watcher = peers.find((p) => p.name === "watcher");
    assert.ok(watcher, `no watcher in ${peersJson.stdout}`);
    assert.equal(watcher.runtime, currentRuntime);
    assert.equal(watcher.pid, watching.pid);
    assert.ok(peers.some((p) => p.id === 0), "the hub's own peer is listed");

    assert.equal(peersTable.code, 0, peersTable.stderr);
    const [heading, ...rows] = peersTable.stdout.split("\n");
    assert.match(heading, /^\s*ID\s+NAME\s+PID\s+RUNTIME\s+CONNECTED$/);
    assert.ok(rows.some((r) => /\bwatcher\b/.test(r)), peersTable.stdout);

    assert.equal(statsJson.code, 0, statsJson.stderr);
    const stats = JSON.parse(statsJson.stdout);
    for (
      const field of ["peers", "handlers", "peersJoined", "framesIn", "framesOut", "requests", "dropped", "uptimeMs"]
    ) {
      assert.ok(field in stats, `stats lacks ${field}: ${statsJson.stdout}`);
    }
    // The watcher and the stats command itself, and at most the three other commands running beside it.
    assert.ok(stats.peers >= 2 && stats.peers <= 5, `peers ${stats.peers}`);
    assert.ok(stats.peersJoined >= stats.peers, `peersJoined ${stats.peersJoined}, peers ${stats.peers}`);
    assert.equal(statsTable.code, 0, statsTable.stderr);
    assert.match(statsTable.stdout, /^COUNTER\s+VALUE$/m);
    assert.match(statsTable.stdout, /^uptime\s+\S+$/m);
  } finally {
    await stopAll(children);
    dir.remove();
  }
});

test("bench against the running hub prints the percentiles and the alert rate", PROCESS_TEST, async () => {
  const dir = tempDir();
  const children: Child[] = [];
  try {
    const { path } = await startHub(dir.path, children);
    const [table, json] = await Promise.all([
      ipcbus(["bench", "--path", path, "--requests", "200", "--alerts", "2000"]),
      ipcbus(["bench", "--path", path, "--requests", "100", "--alerts", "1000", "--size", "16", "--json"]),
    ]);
    assert.equal(table.code, 0, table.stderr);
    for (const label of ["p50", "p90", "p99"]) {
      assert.match(table.stdout, new RegExp(`^\\s+${label}\\s+[\\d.]+ ms$`, "m"));
    }
    assert.match(table.stdout, /^\s+rate\s+[\d,]+ alerts\/s$/m);
    assert.match(table.stderr, /bench: /, "a progress line on stderr");

    assert.equal(json.code, 0, json.stderr);
    const result = JSON.parse(json.stdout);
    assert.equal(result.requests.count, 100);
    assert.ok(result.requests.p50 <= result.requests.p90 && result.requests.p90 <= result.requests.p99);
    assert.equal(result.alerts.received, 1000);
    assert.equal(result.alerts.lost, 0);
  } finally {
    await stopAll(children);
    dir.remove();
  }
});

test("bench without --path runs a fresh hub in its own process", PROCESS_TEST, async () => {
  const run = await ipcbus(["bench", "--requests", "50", "--alerts", "500", "--json"]);
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assert.match(result.hub, /^in-process at /);
  assert.equal(result.alerts.received, 500);
  assert.equal(existsSync(result.hub.replace(/^in-process at /, "")), false, "the bench hub's socket is removed");
});

test("a hub with --token refuses peers without it: exit 7", PROCESS_TEST, async () => {
  const dir = tempDir();
  const children: Child[] = [];
  try {
    const { path } = await startHub(dir.path, children, ["--token", "s3cret", "--json"]);
    const [refused, wrong, accepted] = await Promise.all([
      ipcbus(["request", "/ipcbus/echo", "1", "--path", path]),
      ipcbus(["request", "/ipcbus/echo", "1", "--path", path, "--token", "nope"]),
      ipcbus(["request", "/ipcbus/echo", "1", "--path", path, "--token", "s3cret"]),
    ]);
    assert.equal(refused.code, 7);
    assertOneErrorLine(refused.stderr, /AuthError: .*no auth token/);
    assert.equal(wrong.code, 7);
    assertOneErrorLine(wrong.stderr, /AuthError: .*wrong auth token/);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(accepted.stdout, "1");
  } finally {
    await stopAll(children);
    dir.remove();
  }
});

test("SIGINT to the hub closes it gracefully: exit 0 and the socket file is gone", PROCESS_TEST, async () => {
  const dir = tempDir();
  const children: Child[] = [];
  try {
    const { hub, path } = await startHub(dir.path, children);
    assert.ok(existsSync(path), "the hub made its socket file");
    assert.equal(await interrupt(hub, "SIGINT"), 0, hub.stderr);
    assert.ok(hub.lines.some((l) => /closed$/.test(l)), hub.lines.join("\n"));
    assert.equal(existsSync(path), false, "the socket file is removed");
  } finally {
    await stopAll(children);
    dir.remove();
  }
});

test("SIGTERM to a hub --json closes it too, logging JSON lines", PROCESS_TEST, async () => {
  const dir = tempDir();
  const children: Child[] = [];
  try {
    const { hub, path } = await startHub(dir.path, children, ["--json"]);
    const ready = JSON.parse(hub.lines[0]);
    assert.equal(ready.event, "ready");
    assert.equal(ready.path, path);
    assert.equal(ready.pid, hub.pid);
    assert.equal(await interrupt(hub, "SIGTERM"), 0, hub.stderr);
    const events = hub.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l).event);
    assert.deepEqual(events.slice(-2), ["closing", "closed"]);
    assert.equal(existsSync(path), false);
  } finally {
    await stopAll(children);
    dir.remove();
  }
});

test(
  "a hub whose stdout is closed goes on serving, says so once on stderr, and still closes gracefully",
  PROCESS_TEST,
  async () => {
    const dir = tempDir();
    const children: Child[] = [];
    try {
      const { hub, path } = await startHub(dir.path, children);
      // What `ipcbus hub | head -1` does once head has its line: the hub's next log line meets EPIPE.
      hub.process.stdout!.destroy();
      for (let i = 0; i < 3; i++) {
        const peers = await ipcbus(["peers", "--path", path]);
        assert.equal(peers.code, 0, `peers ${i}: ${peers.stderr}; the hub's stderr: ${hub.stderr}`);
      }
      await stderrOf(hub, "stdout is gone");
      assert.equal(hub.stderr.match(/stdout is gone/g)?.length, 1, hub.stderr);
      assert.equal(await interrupt(hub, "SIGINT"), 0, hub.stderr);
      assert.equal(existsSync(path), false, "the socket file is removed");
    } finally {
      await stopAll(children);
      dir.remove();
    }
  },
);

/** A `cli.ts hub` whose stdout or stderr is a named pipe that this process holds open and reads only when asked to. */
interface UnreadHub {
  path: string;
  pid: number;
  exited: Promise<number | null>;
  /** Everything the hub wrote to the pipe so far (reads what is waiting, without blocking). */
  output(): string;
  /** Kills the hub if it still runs, and removes its files. */
  remove(): void;
}

async function hubWithUnreadOutput(which: "stdout" | "stderr"): Promise<UnreadHub> {
  const dir = tempDir();
  const fifo = join(dir.path, which);
  execFileSync("mkfifo", [fifo]);
  const reading = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writing = openSync(fifo, "w");
  const path = join(dir.path, "hub.sock");
  const argv = currentRuntime === "deno" ? ["run", "-A", "cli.ts"] : ["cli.ts"];
  const hub = spawn(runtimeBin(currentRuntime), [...argv, "hub", "--path", path], {
    cwd: repoRoot,
    stdio: ["ignore", which === "stdout" ? writing : "ignore", which === "stderr" ? writing : "ignore"],
  });
  closeSync(writing);
  const exited = new Promise<number | null>((resolve) => hub.on("exit", (code) => resolve(code)));
  let text = "";
  const output = () => {
    const buffer = new Uint8Array(64 * 1024);
    for (let n = 1; n > 0;) {
      try {
        n = readSync(reading, buffer);
      } catch (err) {
        if ((err as { code?: string }).code === "EAGAIN") break;
        throw err;
      }
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return text;
  };
  const remove = () => {
    if (hub.exitCode === null && hub.signalCode === null) hub.kill("SIGKILL");
    closeSync(reading);
    dir.remove();
  };
  let first: Peer | undefined;
  try {
    await until(WAIT, "the hub to serve", () => {
      void connect({ path }).then((peer) => (first = peer), () => {});
      return first !== undefined;
    });
  } catch (err) {
    remove();
    throw err;
  }
  await first!.close();
  return { path, pid: hub.pid!, exited, output, remove };
}

test(
  "a hub whose stdout is not read goes on serving, and says how many log lines it dropped",
  PROCESS_TEST,
  async () => {
    const hub = await hubWithUnreadOutput("stdout");
    try {
      // A join and a leave are two lines, about 120 bytes: far more than the pipe (64 KiB) and the hub's queue hold.
      for (let i = 0; i < 4000; i++) {
        const peer = await connect({ path: hub.path, timeout: 5000 });
        await peer.close();
      }
      await until(WAIT, "the hub to say it dropped log lines", () => /log lines dropped/.test(hub.output()));
      assert.match(hub.output(), /ipcbus: \d+ log lines dropped: stdout was not read fast enough\n/);
      assert.match(hub.output(), /^ipcbus hub ready on /, "the lines before the pipe filled were kept, in order");
      process.kill(hub.pid, "SIGINT");
      assert.equal(await within(WAIT, "the hub's exit", hub.exited), 0);
      assert.match(hub.output(), /closed\n$/, "the last lines are written before the hub exits");
    } finally {
      hub.remove();
    }
  },
);

test(
  "peers dropped for bad input cannot stall a hub whose stderr is not read: their error lines are dropped and counted",
  PROCESS_TEST,
  async () => {
    const hub = await hubWithUnreadOutput("stderr");
    try {
      // Each connection declares a frame over maxFrameBytes: an error line of about 130 bytes on the hub's stderr.
      // The next one is made once the hub has closed it, so that the socket's backlog never fills.
      for (let i = 0; i < 3000; i++) {
        await within(
          5000,
          `the hub to close bad connection ${i}`,
          new Promise<void>((resolve, reject) => {
            const socket = dial(hub.path, () => socket.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1])));
            socket.on("error", reject);
            socket.on("close", () => resolve());
            socket.resume();
          }),
        );
      }
      // The hub still serves, at once, those that behave.
      const peer = await connect({ path: hub.path, timeout: 5000 });
      assert.deepEqual(await peer.request("/ipcbus/echo", { n: 1 }, { timeout: 5000 }), { n: 1 });
      await peer.close();
      await until(WAIT, "the hub to say it dropped error lines", () => /error lines dropped/.test(hub.output()));
      assert.match(hub.output(), /ipcbus: \d+ error lines dropped: stderr was not read fast enough\n/);
      assert.match(hub.output(), /^\S+ ipcbus: FrameTooLargeError: /, "the lines before the pipe filled were kept");
    } finally {
      hub.remove();
    }
  },
);

test("with --channel, one-shot commands join as clients of a hub --channel and never host", PROCESS_TEST, async () => {
  const dir = tempDir();
  const children: Child[] = [];
  try {
    // Waits out the join timeout, so it runs alongside the rest.
    const nobody = ipcbus(["peers", "--channel", "nobody", "--dir", dir.path]);
    const hub = start(["hub", "--channel", "cli", "--dir", dir.path, "--name", "host"], children);
    await hub.waitFor(/ready on channel cli/, WAIT);
    const [echo, peers, stats] = await Promise.all([
      ipcbus(["request", "/ipcbus/echo", '"hello"', "--channel", "cli", "--dir", dir.path]),
      ipcbus(["peers", "--json", "--channel", "cli", "--dir", dir.path]),
      ipcbus(["stats", "--json", "--channel", "cli", "--dir", dir.path]),
    ]);
    assert.equal(echo.code, 0, echo.stderr);
    assert.equal(JSON.parse(echo.stdout), "hello");
    assert.equal(peers.code, 0, peers.stderr);
    assert.ok(JSON.parse(peers.stdout).some((p: { name?: string }) => p.name === "host"), peers.stdout);
    assert.equal(stats.code, 0, stats.stderr);
    // The host, the stats command itself, and at most the two other commands running beside it.
    const { peers: peerCount } = JSON.parse(stats.stdout);
    assert.ok(peerCount >= 2 && peerCount <= 4, `peers ${peerCount}`);

    const second = await ipcbus(["hub", "--channel", "cli", "--dir", dir.path]);
    assert.equal(second.code, 1);
    assertOneErrorLine(second.stderr, /HubExistsError/);
    assert.equal(await interrupt(hub, "SIGINT"), 0, hub.stderr);
    assert.equal(existsSync(join(dir.path, "cli.sock")), false);

    const none = await nobody;
    assert.equal(none.code, 3, "a client never hosts: no hub means exit 3");
    assertOneErrorLine(none.stderr, /ConnectError: .*nobody/);
    assert.equal(existsSync(join(dir.path, "nobody.sock")), false);
  } finally {
    await stopAll(children);
    dir.remove();
  }
});

test(
  "a hub --channel --auth admits the clients that can read its token file, and refuses the rest: exit 7",
  PROCESS_TEST,
  async () => {
    const dir = tempDir();
    const children: Child[] = [];
    try {
      const hub = start(["hub", "--channel", "locked", "--dir", dir.path, "--auth"], children);
      await hub.waitFor(/ready on channel locked/, WAIT);
      const admitted = await ipcbus(["request", "/ipcbus/echo", "7", "--channel", "locked", "--dir", dir.path]);
      assert.equal(admitted.code, 0, admitted.stderr);
      assert.equal(admitted.stdout, "7");

      const token = join(dir.path, "locked.token");
      renameSync(token, `${token}.away`);
      const refused = await ipcbus(["request", "/ipcbus/echo", "7", "--channel", "locked", "--dir", dir.path]);
      assert.equal(refused.code, 7);
      assertOneErrorLine(refused.stderr, /AuthError/);
      assert.equal(await interrupt(hub, "SIGINT"), 0, hub.stderr);
    } finally {
      await stopAll(children);
      dir.remove();
    }
  },
);
