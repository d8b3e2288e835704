/**
 * The protocol checked by a second implementation: the Python reference
 * client (clients/python/ipcbus.py, standard library + cbor2) against a hub
 * of the runtime running this file, with ipcbus peers of both runtimes in
 * child processes on the other side. Needs a python3 with cbor2
 * (`IPCBUS_PYTHON`, else /usr/bin/python3, else python3 on PATH); without
 * one every test fails, naming the install command.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { serve } from "../mod.ts";
import type { Hub } from "../src/bus/hub.ts";
import { repoRoot, type Runtime, runtimes, tempDir, until, within } from "./_helpers.ts";
import { type ChildEvent, JsonChild } from "./_json_child.ts";

const INSTALL = "apt-get install -y python3-cbor2";

/** The first python3 that imports cbor2, or undefined. */
function findPython(): string | undefined {
  const candidates = [process.env.IPCBUS_PYTHON, "/usr/bin/python3", "python3"].filter((c): c is string => !!c);
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ["-c", "import cbor2"], { stdio: "ignore", timeout: 10_000 });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

const python = findPython();

function needPython(): string {
  if (python === undefined) throw new Error(`No python3 with cbor2 found: ${INSTALL}`);
  return python;
}

/** The Python fixture in a child process: JSON commands in, JSON events out. */
class PythonChild {
  readonly process: ChildProcess;
  readonly events: ChildEvent[] = [];
  stderr = "";
  #seq = 0;
  #partial = "";

  constructor(path: string, options: Record<string, unknown> = {}) {
    this.process = spawn(
      needPython(),
      [join(repoRoot, "tests/fixtures/python_peer.py"), path, JSON.stringify(options)],
      // No __pycache__ directories left in the source tree.
      { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } },
    );
    this.process.stdout!.on("data", (chunk: Uint8Array) => {
      const parts = (this.#partial + new TextDecoder().decode(chunk)).split("\n");
      this.#partial = parts.pop()!;
      for (const line of parts) this.events.push(JSON.parse(line));
    });
    this.process.stderr!.on("data", (chunk: Uint8Array) => (this.stderr += new TextDecoder().decode(chunk)));
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  async next(what: string, accept: (e: ChildEvent) => boolean, ms = 10_000): Promise<ChildEvent> {
    let found: ChildEvent | undefined;
    await until(ms, `${what} from the Python client`, () => {
      found = this.events.find(accept);
      if (found || this.running) return found !== undefined;
      throw new Error(`Python client exited before ${what}; stderr:\n${this.stderr}`);
    });
    return found!;
  }

  /** Runs a command and returns its result; throws if it failed. */
  async cmd(op: string, args: Record<string, unknown> = {}, ms = 15_000): Promise<ChildEvent["result"]> {
    const seq = ++this.#seq;
    this.process.stdin!.write(JSON.stringify({ op, seq, ...args }) + "\n");
    const answer = await this.next(
      `answer to ${op}`,
      (e) => (e.ev === "done" || e.ev === "failed") && e.seq === seq,
      ms,
    );
    if (answer.ev === "failed") throw new Error(`${op} failed in the Python client: ${JSON.stringify(answer.error)}`);
    return answer.result;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = new Promise((resolve) => this.process.once("exit", resolve));
    this.process.stdin!.end();
    await within(5_000, "the Python client to exit", exited).catch(() => this.process.kill("SIGKILL"));
  }
}

let dir: ReturnType<typeof tempDir>;
let hub: Hub;
let py: PythonChild;
const js = new Map<Runtime, JsonChild>();
const TOKEN = "s3cret-token";

before(async () => {
  if (python === undefined) return;
  dir = tempDir("ipcbus-py-");
  const path = join(dir.path, "hub.sock");
  hub = await serve({ path, auth: { token: TOKEN } });
  hub.peer.handle("/js/types", ({ data }) => ({
    got: data,
    map: new Map<unknown, unknown>([["a", 1], [2, "two"]]),
    set: new Set([1, 2]),
    date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    big: 2n ** 64n + 1n,
    int64: 2n ** 40n,
    bytes: new Uint8Array([0, 255]),
    float: 0.5,
    undef: undefined,
    nul: null,
    text: "ünï 😀",
  }));
  for (const runtime of runtimes) {
    const child = new JsonChild(runtime, "tests/fixtures/bus_peer.ts", [
      path,
      JSON.stringify({ auth: { token: TOKEN } }),
    ], 15_000);
    js.set(runtime, child);
  }
  for (const child of js.values()) child.ready = await child.next("ready", (e) => e.ev === "ready");
  py = new PythonChild(path, { token: TOKEN, name: "py" });
  await py.next("ready", (e) => e.ev === "ready" || e.ev === "connect_failed");
});

after(async () => {
  if (python === undefined) return;
  await py?.stop();
  for (const child of js.values()) await child.stop();
  await hub?.close({ timeout: 500 });
  dir?.remove();
});

const pyId = () => py.events.find((e) => e.ev === "ready")!.id as number;

test("a Python client connects with the hub's token, and a wrong token is refused with auth_failed", async () => {
  needPython();
  assert.ok(pyId() >= 1, JSON.stringify(py.events[0]));
  const intruder = new PythonChild(hub.path!, { token: "wrong" });
  const failed = await intruder.next("connect_failed", (e) => e.ev === "connect_failed" || e.ev === "ready");
  assert.equal(failed.ev, "connect_failed");
  assert.equal(failed.error.code, "auth_failed");
  await intruder.stop();
});

test("alerts go both ways between the Python client and Deno and Bun peers", async () => {
  needPython();
  await py.cmd("on", { name: "to-py" });
  for (const [runtime, child] of js) {
    await child.cmd("on", { name: "from-py" });
    await py.cmd("send", { to: child.id, name: "from-py", data: { runtime, n: [1, 2.5, "ü"] } });
    const alert = await child.next("alert from Python", (e) => e.ev === "alert" && e.data?.runtime === runtime);
    assert.deepEqual(alert.data, { runtime, n: [1, 2.5, "ü"] });
    assert.equal(alert.sender, pyId());
    await child.cmd("send", { to: "py", name: "to-py", data: { from: runtime } });
    const back = await py.next("alert", (e) => e.ev === "alert" && e.name === "to-py" && e.sender === child.id);
    assert.deepEqual(back.data, { map: [[{ text: "from" }, { text: runtime }]] });
  }
});

test("a Python broadcast reaches every peer, itself and the hub's own included, and Deno and Bun broadcasts reach it", async () => {
  needPython();
  await py.cmd("on", { name: "all" });
  for (const child of js.values()) await child.cmd("on", { name: "all" });
  const seen = new Promise<unknown>((resolve) => hub.peer.on("all", (data) => resolve(data)));
  await py.cmd("broadcast", { name: "all", data: "hello everyone" });
  for (const child of js.values()) await child.next("broadcast", (e) => e.ev === "alert" && e.name === "all");
  await py.next("own broadcast", (e) => e.ev === "alert" && e.name === "all");
  assert.equal(await within(5_000, "peer 0's copy", seen), "hello everyone");
  for (const [runtime, child] of js) {
    await child.cmd("broadcast", { name: "all", data: { runtime } });
    const got = await py.next(
      `${runtime}'s broadcast`,
      (e) => e.ev === "alert" && e.name === "all" && e.sender === child.id,
    );
    assert.deepEqual(got.data, { map: [[{ text: "runtime" }, { text: runtime }]] });
  }
});

test("requests go both ways between the Python client and Deno and Bun peers", async () => {
  needPython();
  await py.cmd("handle", { route: "/py/*" });
  for (const [runtime, child] of js) {
    await child.cmd("handle", { route: `/${runtime}/echo` });
    const answer = await py.cmd("request", { route: `/${runtime}/echo`, data: { q: 1 } });
    assert.deepEqual(answer.value.map.find((e: unknown[]) => (e[0] as { text: string }).text === "by")[1], {
      int: String(child.id),
    });
    const back = await child.cmd("request", { route: "/py/hello", data: { from: runtime }, timeout: 5_000 });
    assert.deepEqual(back.value, { by: pyId(), route: "/py/hello", data: { from: runtime }, sender: child.id });
  }
  assert.deepEqual((await py.cmd("request", { route: "/ipcbus/echo", data: [1, "two"] })).value, {
    array: [{ int: "1" }, { text: "two" }],
  });
});

test("errors reach the Python client by code, and a Python handler's error reaches ipcbus peers as RemoteError", async () => {
  needPython();
  assert.equal((await py.cmd("request", { route: "/nobody" })).error.code, "no_handler_found");
  assert.equal((await py.cmd("request", { route: "/x", to: 999 })).error.code, "no_such_peer");
  const child = js.get("deno")!;
  await child.cmd("handle", { route: "/deno/throw", mode: "throw", message: "nope", code: "bad_input" });
  const thrown = (await py.cmd("request", { route: "/deno/throw" })).error;
  assert.deepEqual([thrown.code, thrown.remoteName, thrown.remoteCode], ["remote_error", "RangeError", "bad_input"]);
  await py.cmd("handle", { route: "/pythrow", mode: "throw", message: "py says no", code: "py_code" });
  for (const other of js.values()) {
    const { error } = await other.cmd("request", { route: "/pythrow", timeout: 5_000 });
    assert.deepEqual([error.code, error.remoteName, error.remoteCode], ["remote_error", "ValueError", "py_code"]);
  }
});

test("every CBOR type of PROTOCOL.md §3 crosses between Python and JavaScript as the document says", async () => {
  needPython();
  const { value } = await py.cmd("request", { route: "/js/types", every_type: true });
  const got = Object.fromEntries(
    (value.map as Array<[{ text: string }, unknown]>).map(([k, v]) => [k.text, v]),
  ) as Record<string, { map: Array<[{ text: string }, unknown]> }>;
  const echoed = Object.fromEntries(got.got.map.map(([k, v]) => [k.text, v]));
  const sent = Object.fromEntries(
    ((await py.cmd("every_type")).map as Array<[{ text: string }, unknown]>).map(([k, v]) => [k.text, v]),
  );
  // What JavaScript reads back differently, as §3 says; everything else comes back as sent.
  const differs: Record<string, unknown> = {
    integral_float: { int: "2" },
    int_keys: { map: [[{ text: "1" }, { text: "one" }]] },
  };
  for (const [key, description] of Object.entries(sent)) {
    assert.deepEqual(echoed[key], differs[key] ?? description, key);
  }
  assert.deepEqual(got.map, { map: [[{ text: "a" }, { int: "1" }], [{ int: "2" }, { text: "two" }]] });
  assert.deepEqual(got.set, { set: [{ int: "1" }, { int: "2" }] });
  assert.deepEqual(got.date, { datetime: Date.UTC(2026, 0, 2, 3, 4, 5) / 1000 });
  assert.deepEqual(got.big, { int: String(2n ** 64n + 1n) });
  assert.deepEqual(got.int64, { int: String(2n ** 40n) });
  assert.deepEqual(got.bytes, { bytes: "00ff" });
  assert.deepEqual(got.float, { float: 0.5 });
  assert.deepEqual(got.undef, { undefined: true });
  assert.deepEqual(got.nul, { null: true });
  assert.deepEqual(got.text, { text: "ünï 😀" });
});

test("/ipcbus/echo answers with the payload's own bytes, however the requester wrote its CBOR", async () => {
  needPython();
  // Shortest-form map, float16, an 8-byte integer head, a tag, indefinite lengths: none is how cbor-x would write it.
  const payloads = ["a1616e01", "f93c00", "1b0000000000000001", "c1fb41d0000000000000", "9f0102ff", "bf6161f5ff"];
  for (const hex of payloads) assert.equal(await py.cmd("echo_payload", { route: "/ipcbus/echo", hex }), hex);
});

test("a 1 MiB payload goes from Python through /ipcbus/echo and back", async () => {
  needPython();
  assert.equal(await py.cmd("big_echo", { bytes: 1 << 20 }, 30_000), 1 << 20);
});

test("answers to hostile request ids are valid CBOR carrying the id, and no responder is disconnected", async () => {
  needPython();
  const rids = [-1, -3, -5, 2 ** 32, 2 ** 33, -(2 ** 33), 0, 2 ** 32 - 1, -(2 ** 32), 2 ** 53 - 1];
  const leaves: number[] = [];
  hub.peer.addEventListener("peerleave", (e) => leaves.push((e as CustomEvent).detail.id));
  const targets: Array<[string, number | undefined]> = [["/ipcbus/echo", undefined]];
  for (const [runtime, child] of js) targets.push([`/${runtime}/echo`, child.id]);
  for (const [route, to] of targets) {
    // As §3 says (float64 past ±2^32), and as a CBOR library writes them by default (8-byte heads).
    for (const wide_ints of [false, true]) {
      const answers = await py.cmd("hostile", { route, to, rids, data: "ping", wide_ints });
      assert.equal(answers.length, rids.length);
      for (const answer of answers) assert.ok(answer.same && answer.k === "p", `${route}: ${JSON.stringify(answer)}`);
    }
  }
  for (const child of js.values()) assert.ok(child.running);
  assert.deepEqual(leaves, []);
  assert.equal(hub.peers.length, 3);
  assert.deepEqual(await py.cmd("errors"), []);
});

test("a broadcast with t: null is a broadcast, and an integral float where an int is required is accepted", async () => {
  needPython();
  const child = js.get("bun")!;
  await child.cmd("on", { name: "nullt" });
  await py.cmd("raw", {
    envelope: { k: "a", t: null, n: "nullt", d: "" },
    bytes: { d: "f6" },
    from_self: ["f"],
    floats: ["f"],
  });
  await child.next("the t: null broadcast", (e) => e.ev === "alert" && e.name === "nullt");
  assert.deepEqual(await py.cmd("errors"), []);
});

test("a handle with a pattern of two kinds is refused with protocol_error naming them", async () => {
  needPython();
  const other = new PythonChild(hub.path!, { token: TOKEN });
  await other.next("ready", (e) => e.ev === "ready");
  await other.cmd("raw", { envelope: { k: "handle", patterns: [{ exact: "/a", prefix: "/b" }] } });
  await other.next("disconnect", (e) => e.ev === "disconnect");
  const [error] = await other.cmd("errors");
  assert.equal(error.code, "protocol_error");
  assert.match(error.message, /exactly one of exact, prefix, regexp; got exact and prefix/);
  await other.stop();
});

test("a handle with a RegExp the hub cannot run in linear time is refused with protocol_error saying why", async () => {
  needPython();
  const other = new PythonChild(hub.path!, { token: TOKEN });
  await other.next("ready", (e) => e.ev === "ready");
  await other.cmd("raw", { envelope: { k: "handle", patterns: [{ regexp: { source: "^/a(?=/b)", flags: "" } }] } });
  await other.next("disconnect", (e) => e.ev === "disconnect");
  const [error] = await other.cmd("errors");
  assert.equal(error.code, "protocol_error");
  assert.match(error.message, /Unsupported RegExp route \/\^\/a\(\?=\/b\)\/: lookahead/);
  await other.stop();
});
