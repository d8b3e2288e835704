/**
 * Every example in examples/ runs here as a child process on the current
 * runtime, in the test mode its header documents (`--once`, `--count N`, or
 * a signal to stop), and its output is checked: the examples are
 * documentation, and this keeps them from rotting.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Child, currentRuntime, tempDir, until, within } from "./_helpers.ts";

const WAIT = 15_000;
/** Above Bun's default of 5 s per test, so that the bounded waits below are what fails first. */
const PROCESS_TEST = { timeout: 60_000 };

/** A running example; `done` resolves with its exit code once its stdout is closed too, so every line is in. */
type Example = Child & { done: Promise<number | null> };

function start(script: string, args: string[]): Example {
  const child = new Child(currentRuntime, `examples/${script}`, args);
  const done = new Promise<number | null>((resolve) => child.process.once("close", (code) => resolve(code)));
  return Object.assign(child, { done });
}

/** Waits for the example to finish by itself and checks it exited 0. */
async function exitsCleanly(child: Example, what: string): Promise<void> {
  const output = () => `stdout:\n${child.lines.join("\n")}\nstderr:\n${child.stderr}`;
  const code = await within(WAIT, `${what} to exit`, child.done).catch((err) => {
    throw new Error(`${err.message}; ${output()}`);
  });
  assert.equal(code, 0, `${what} exited with ${code}; ${output()}`);
}

/**
 * Sends SIGTERM, which the examples handle by closing and exiting 0, and returns the exit code.
 * Signalled through `process.kill`: after `ChildProcess.kill()`, Deno reports the signal as the
 * cause of exit even when the child handled it and exited 0.
 */
async function terminate(child: Example, what: string): Promise<number | null> {
  if (child.process.exitCode === null && child.process.signalCode === null) process.kill(child.pid, "SIGTERM");
  return await within(WAIT, `${what} to exit after SIGTERM`, child.done);
}

/** Kills whatever is still running: only the children this test started. */
async function stopAll(children: Child[]): Promise<void> {
  await Promise.all(children.map((child) => child.kill("SIGKILL").catch(() => {})));
}

function matching(child: Child, pattern: RegExp): RegExpExecArray[] {
  return child.lines.map((line) => pattern.exec(line)).filter((m): m is RegExpExecArray => m !== null);
}

test(
  "nginx_workers.ts: workers answer hello with a reply, find each other by OS pid, and all get the broadcast",
  PROCESS_TEST,
  async () => {
    const dir = tempDir();
    const socket = join(dir.path, "ngx.sock");
    const master = start("nginx_workers.ts", ["master", socket, "--workers", "3", "--once"]);
    try {
      await exitsCleanly(master, "nginx_workers.ts master");
      const pidOfPeer = new Map(
        matching(master, /^master: worker pid (\d+) joined as peer (\d+)/).map((m) => [m[2], m[1]]),
      );
      const pids = [...pidOfPeer.values()];
      assert.equal(pids.length, 3);
      for (const pid of pids) {
        const [sent] = matching(master, new RegExp(`^worker ${pid}: sending hello to pid (\\d+) \\(peer (\\d+)\\)`));
        assert.ok(sent, `worker ${pid} sent no hello`);
        assert.notEqual(sent[1], pid);
        assert.equal(pidOfPeer.get(sent[2]), sent[1], "the peer found through peers() has the pid asked for");
        const [hello] = matching(
          master,
          new RegExp(`^worker ${sent[1]}: hello \\{"text":"hello from ${pid}"\\} from peer (\\d+), pid (\\d+)$`),
        );
        assert.ok(hello, `worker ${sent[1]} did not print the hello of worker ${pid}`);
        assert.equal(hello[2], pid, "senderPid is the sender's OS pid");
        assert.equal(pidOfPeer.get(hello[1]), pid, "sender is the sender's peer id");
        const reply = matching(
          master,
          new RegExp(`^worker ${pid}: reply \\{"text":"hi back from ${sent[1]}"\\} from peer \\d+, pid ${sent[1]}$`),
        );
        assert.equal(reply.length, 1, `worker ${pid} got no reply from ${sent[1]}`);
        assert.equal(matching(master, new RegExp(`^worker ${pid}: reload \\{"version":2\\}`)).length, 1);
      }
      assert.equal(
        matching(master, /^worker \d+: reload .* \(my own\)$/).length,
        1,
        "the broadcast reaches its sender too",
      );
      assert.equal(matching(master, /^master: reload /).length, 1, "and the hub's own peer");
      assert.ok(master.lines.includes("master: all 3 workers got a hello, a reply and the broadcast"));
      assert.equal(matching(master, /^worker \d+: left$/).length, 3);
      assert.equal(existsSync(socket), false, "the hub removed its socket file");
    } finally {
      await stopAll([master]);
      dir.remove();
    }
  },
);

test(
  "uri_server.ts and uri_client.ts: exact, prefix and RegExp routes, echo, delay, timeout, no responder, stats",
  PROCESS_TEST,
  async () => {
    const dir = tempDir();
    const socket = join(dir.path, "uri.sock");
    const server = start("uri_server.ts", [socket, "--once"]);
    const children: Child[] = [server];
    try {
      await server.waitFor("server: listening on");
      const client = start("uri_client.ts", [socket]);
      children.push(client);
      await exitsCleanly(client, "uri_client.ts");
      const answer = (route: string) => {
        const line = client.lines.find((l) => l.startsWith(`client: ${route} -> `));
        assert.ok(line, `no answer printed for ${route}:\n${client.lines.join("\n")}`);
        return line;
      };
      assert.match(answer("/myapp/test"), /"description":"exact route \/myapp\/test","youSent":\{"hello":"there"\}/);
      assert.match(answer("/myapp/something/else"), /"description":"prefix \/myapp\/\*"/);
      assert.match(answer("/users/42"), /\{"id":42,"name":"user-42"\}/);
      assert.match(answer("/users/0"), /RemoteError \[remote_error, the handler threw RangeError\] There is no user 0/);
      assert.match(answer("/ipcbus/echo"), /\{"ping":"pong","n":\[1,2\]\}/);
      const delays = client.lines.filter((l) => l.startsWith("client: /ipcbus/delay -> "));
      assert.match(delays[0], /\{"delay":100\}/);
      assert.match(delays[1], /TimeoutError \[timeout\]/);
      assert.match(answer("/nobody/serves/this"), /NoResponderError \[no_handler_found\]/);
      assert.match(answer("/ipcbus/stats"), /peers 1, requests 9, responses \d+/);

      await exitsCleanly(server, "uri_server.ts --once");
      assert.equal(matching(server, /^server: \/(myapp|users)\/\S+ from peer 1 \(pid \d+\)/).length, 4);
      assert.ok(server.lines.includes("server: client uri-client left"));
      assert.match(server.lines.find((l) => l.startsWith("server: stats "))!, /"peers":0,"requests":9/);
      assert.equal(existsSync(socket), false);
    } finally {
      await stopAll(children);
      dir.remove();
    }
  },
);

test(
  "cluster_channel.ts: three copies of one file join a channel, greet the next by id, broadcast news, and exit",
  PROCESS_TEST,
  async () => {
    const dir = tempDir();
    const members = [1, 2, 3].map(() => start("cluster_channel.ts", [dir.path, "--count", "3"]));
    try {
      for (const member of members) await exitsCleanly(member, "cluster_channel.ts --count 3");
      const joined = members.map((m) => {
        const [line] = matching(m, /^member (\d+) \(pid \d+\) joined channel cluster; hosting the hub: (yes|no)$/);
        assert.ok(line, `no join line:\n${m.lines.join("\n")}`);
        return { id: Number(line[1]), hosts: line[2] === "yes", child: m };
      });
      assert.deepEqual(joined.map((j) => j.id).sort(), [1, 2, 3]);
      assert.equal(joined.filter((j) => j.hosts).length, 1, "exactly one member hosts the hub");
      for (const { id, child } of joined) {
        const next = id % 3 + 1;
        const previous = (id + 1) % 3 + 1;
        assert.equal(matching(child, new RegExp(`^member ${id}: greeting member ${next}$`)).length, 1);
        assert.equal(matching(child, new RegExp(`^member ${id}: greet \\{"from":${previous},`)).length, 1);
        const newsFrom = matching(child, new RegExp(`^member ${id}: news .* from member (\\d+)$`)).map((m) =>
          Number(m[1])
        );
        assert.deepEqual(newsFrom.sort(), [1, 2, 3].filter((other) => other !== id));
        assert.equal(matching(child, new RegExp(`^member ${id}: heard from all 2 others`)).length, 1);
        assert.equal(matching(child, new RegExp(`^member ${id}: left the channel$`)).length, 1);
      }
    } finally {
      await stopAll(members);
      dir.remove();
    }
  },
);

test(
  "group_echo.ts: the consumer serves the producers' echoes, and another is elected when it is killed",
  PROCESS_TEST,
  async () => {
    const dir = tempDir();
    const begin = () => start("group_echo.ts", [dir.path, "--interval", "50"]);
    const first = begin();
    const children = [first];
    try {
      const consumer = /^member (\d+) \(pid \d+\) is the consumer now$/;
      const firstId = Number(consumer.exec(await first.waitFor(consumer))![1]);
      const producers = [begin(), begin()];
      children.push(...producers);
      for (const p of producers) {
        await p.waitFor(/is a producer now$/);
        await p.waitFor(new RegExp(`^producer \\d+: echo #2 answered by consumer ${firstId}$`));
      }
      await first.waitFor(/^consumer \d+: echo \{"from":\d+,"n":2\} from producer \d+$/);

      await first.kill("SIGKILL");
      let next: Child | undefined;
      await until(
        WAIT,
        "a new consumer",
        () => (next = producers.find((p) => p.lines.some((l) => consumer.test(l)))) !== undefined,
      );
      const nextId = Number(
        consumer.exec(next!.lines.find((l) => consumer.test(l))!)![1],
      );
      assert.notEqual(nextId, firstId);
      const remaining = producers.find((p) => p !== next)!;
      await remaining.waitFor(new RegExp(`^producer \\d+: echo #\\d+ answered by consumer ${nextId}$`));
      await next!.waitFor(/^consumer \d+: echo .* from producer \d+$/);

      for (const p of producers) {
        assert.equal(await terminate(p, "a producer"), 0, `stderr:\n${p.stderr}`);
        assert.match(p.lines.at(-1)!, /^member \d+: left the group$/);
      }
    } finally {
      await stopAll(children);
      dir.remove();
    }
  },
);

test(
  "chat.ts: clients see each other's lines, joins and leaves; end of input leaves cleanly",
  PROCESS_TEST,
  async () => {
    const dir = tempDir();
    const socket = join(dir.path, "chat.sock");
    const server = start("chat.ts", ["server", socket]);
    const children: Child[] = [server];
    try {
      await server.waitFor("chat server on");
      const alice = start("chat.ts", ["client", socket, "alice"]);
      children.push(alice);
      await alice.waitFor("* you are alice; here: nobody else yet");
      const bob = start("chat.ts", ["client", socket, "bob"]);
      children.push(bob);
      await bob.waitFor("* you are bob; here: alice");
      await alice.waitFor("* bob joined");

      bob.send("hello alice");
      await alice.waitFor("<bob> hello alice");
      await server.waitFor("<bob> hello alice");
      alice.send("hi bob");
      await bob.waitFor("<alice> hi bob");
      assert.ok(!bob.lines.some((l) => l.startsWith("<bob>")), "a client does not print its own lines back");

      const impostor = start("chat.ts", ["client", socket, "alice"]);
      children.push(impostor);
      assert.equal(await within(WAIT, "the second alice to exit", impostor.done), 1);
      assert.match(impostor.stderr, /The nick alice is taken/);

      bob.process.stdin!.end();
      await exitsCleanly(bob, "bob's client");
      assert.equal(bob.lines.at(-1), "* you left");
      await alice.waitFor("* bob left");
      await server.waitFor("* bob left");

      alice.process.stdin!.end();
      await exitsCleanly(alice, "alice's client");
      assert.equal(await terminate(server, "the chat server"), 0);
      assert.equal(existsSync(socket), false);
    } finally {
      await stopAll(children);
      dir.remove();
    }
  },
);

test(
  "streams.ts: subscribe() through a TransformStream, and values echoed as frames over listen()/dial()",
  PROCESS_TEST,
  async () => {
    const dir = tempDir();
    const example = start("streams.ts", [dir.path]);
    try {
      await exitsCleanly(example, "streams.ts");
      const words = matching(example, /^subscribe: \+\d+ ms {2}peer \d+: (\w+)$/).map((m) => m[1]);
      assert.deepEqual(words, ["WEB", "STREAMS", "ALL", "THE", "WAY"]);
      assert.ok(example.lines.includes("subscribe: the pipe ended after 5 words"));
      assert.deepEqual(matching(example, /^client: sent (.*), got back (.*)$/).map((m) => [m[1], m[2]]), [
        ["1", '{"echo":1}'],
        ['"two"', '{"echo":"two"}'],
        ['{"three":[3]}', '{"echo":{"three":[3]}}'],
        ["null", '{"echo":null}'],
      ]);
      assert.equal(example.lines.at(-1), "done");
      assert.deepEqual(readdirSync(dir.path), [], "both socket files are removed");
    } finally {
      await stopAll([example]);
      dir.remove();
    }
  },
);
