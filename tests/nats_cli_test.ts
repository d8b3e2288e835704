/**
 * The `ipcbus` command over NATS (`--nats URL [--bus NAME]` in place of
 * `--path`): each subcommand as a child process of the runtime running the
 * tests, against a real nats-server and a peer in this process.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Child, currentRuntime, until, within } from "./_helpers.ts";
import { NATS_TEST, NatsScenario, WAIT } from "./_nats_peers.ts";

/** Runs `cli.ts args…` to its end; the child is killed if it outlives the wait. */
async function ipcbus(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = new Child(currentRuntime, "cli.ts", args);
  const closed = new Promise<number | null>((resolve) => child.process.on("close", (code) => resolve(code)));
  child.process.stdin!.end();
  try {
    const code = await within(WAIT, `ipcbus ${args.join(" ")}`, closed);
    return { code, stdout: child.lines.join("\n"), stderr: child.stderr };
  } finally {
    if (child.process.exitCode === null && child.process.signalCode === null) await child.kill("SIGKILL");
  }
}

test("ipcbus send, broadcast, request, listen and peers work over NATS with --nats and --bus", NATS_TEST, async () => {
  const s = await NatsScenario.start();
  const children: Child[] = [];
  try {
    const bus = ["--nats", s.urls[0], "--bus", s.bus];
    const peer = await s.connect({ name: "svc" });
    peer.handle("/add", ({ data }) => (data as { a: number; b: number }).a + (data as { a: number; b: number }).b);
    const got: unknown[] = [];
    peer.on("job", (data) => void got.push(data));

    const answer = await ipcbus(["request", "/add", '{"a":2,"b":3}', ...bus]);
    assert.equal(answer.code, 0, answer.stderr);
    assert.equal(answer.stdout.trim(), "5");

    const none = await ipcbus(["request", "/nope", ...bus]);
    assert.equal(none.code, 5, none.stderr);

    assert.equal((await ipcbus(["send", "svc", "job", '{"n":1}', ...bus])).code, 0);
    assert.equal((await ipcbus(["broadcast", "job", '{"n":2}', ...bus])).code, 0);
    assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
    assert.equal((await ipcbus(["send", "nobody", "job", ...bus])).code, 8);

    const peers = await ipcbus(["peers", "--json", ...bus]);
    assert.equal(peers.code, 0, peers.stderr);
    assert.deepEqual(JSON.parse(peers.stdout).map((p: { name?: string }) => p.name), ["svc"]);

    const listener = new Child(currentRuntime, "cli.ts", ["listen", "news", ...bus]);
    children.push(listener);
    await until(WAIT, "listen to join", () => listener.stderr.includes("listening"));
    peer.broadcast("news", "hello");
    const line = JSON.parse(await listener.waitFor("hello", WAIT));
    assert.equal(line.name, "news");
    assert.equal(line.sender, peer.id);

    const isolated = await ipcbus(["peers", "--json", "--nats", s.urls[0], "--bus", `${s.bus}x`]);
    assert.deepEqual(JSON.parse(isolated.stdout), []);
    const usage = await ipcbus(["peers", "--nats", s.urls[0], "--path", "/tmp/x.sock"]);
    assert.equal(usage.code, 2);
  } finally {
    await Promise.all(children.map((c) => c.kill("SIGKILL")));
    await s.cleanup();
  }
});
