/**
 * Self-hosting channels (issue 4): members started from one file elect a hub
 * by file lock, get ids 1..n, keep them across restarts and failovers, and
 * queue what they send before they are connected. Multi-process tests mix
 * Deno and Bun members; the in-process ones run two members in one process,
 * which works because `flock` locks belong to open files, not to processes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import {
  type AlertHandler,
  channel,
  type ChannelOptions,
  type ChannelPeer,
  HubExistsError,
  IdTakenError,
  NameTakenError,
  QueueFullError,
} from "../mod.ts";
import { tryLockFile } from "../src/transport/file_lock.ts";
import { Child, currentRuntime, type Runtime, tempDir, until, within } from "./_helpers.ts";

const MEMBER = "tests/fixtures/channel_member.ts";
/** Bound on any single wait for a child's event: process start-up included. */
const WAIT = 20_000;
/** Above Bun's default of 5 s per test, so that the bounded waits below are what fails first. */
const PROCESS_TEST = { timeout: 60_000 };
const ALERTS = ["job", "custom.reload", "marker"];

// deno-lint-ignore no-explicit-any
type Event = { ev: string; at: number } & Record<string, any>;

/** A "pattern" for `Child.waitFor` that parses each line as a JSON event and tests it. */
class EventPattern extends RegExp {
  readonly #check: (event: Event) => boolean;
  readonly #what: string;

  constructor(what: string, check: (event: Event) => boolean) {
    super("^\\{");
    this.#what = what;
    this.#check = check;
  }

  override test(line: string): boolean {
    const event = parseEvent(line);
    return event !== undefined && this.#check(event);
  }

  override toString(): string {
    return this.#what;
  }
}

function parseEvent(line: string): Event | undefined {
  try {
    const value = JSON.parse(line);
    return value !== null && typeof value === "object" && typeof value.ev === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** One channel_member.ts process. */
class Member {
  readonly child: Child;
  readonly runtime: Runtime;
  /** Set from the `ready` event. */
  id = 0;

  readonly #cluster: Cluster;

  constructor(cluster: Cluster, runtime: Runtime, name: string, options: Record<string, unknown>) {
    this.#cluster = cluster;
    this.runtime = runtime;
    this.child = new Child(runtime, MEMBER, [name, JSON.stringify({ alerts: ALERTS, ...options })]);
  }

  /** Every event of kind `ev` printed so far. */
  events(ev: string, check: (event: Event) => boolean = () => true): Event[] {
    return this.child.lines.map(parseEvent).filter((e): e is Event => e?.ev === ev && check(e));
  }

  /** The first event of kind `ev` passing `check`, waiting at most `ms` and failing if the child exits. */
  async next(ev: string, check: (event: Event) => boolean = () => true, ms = WAIT): Promise<Event> {
    const what = `${ev} event of ${this.runtime} member ${this.id || this.child.pid}`;
    try {
      return parseEvent(await this.child.waitFor(new EventPattern(what, (e) => e.ev === ev && check(e)), ms))!;
    } catch (err) {
      // What the other members saw is usually what explains the failure.
      throw new Error(
        `Waiting for ${what} failed: ${(err as Error).message.split("\n")[0]}\n${this.#cluster.report()}`,
      );
    }
  }

  /** The `n`th event of kind `ev` (from 1), waiting for it. */
  async nth(ev: string, n: number): Promise<Event> {
    await this.next(ev, () => this.events(ev).length >= n);
    return this.events(ev)[n - 1];
  }

  async ready(): Promise<Event> {
    const event = await this.next("ready");
    this.id = event.id;
    return event;
  }

  command(cmd: Record<string, unknown>): void {
    this.child.send(JSON.stringify(cmd));
  }

  /** Asks for a status line and returns the first one printed after the question. */
  async status(): Promise<Event> {
    const seen = this.events("status").length;
    this.command({ cmd: "status" });
    await this.next("status", () => this.events("status").length > seen);
    return this.events("status")[seen];
  }

  /** Waits until this member has seen alert `name` from `from` `count` times in all. */
  async alerts(name: string, from: number, count = 1): Promise<Event[]> {
    const matching = (e: Event) => e.name === name && e.from === from;
    await this.next("alert", () => this.events("alert", matching).length >= count);
    return this.events("alert", matching);
  }
}

/** Member processes on one temp dir; every child is SIGKILLed and the dir removed by `stop()`. */
class Cluster {
  readonly dir = tempDir("ipcbus-channel-");
  readonly members: Member[] = [];

  start(runtime: Runtime, options: Record<string, unknown> = {}, name = "t"): Member {
    const member = new Member(this, runtime, name, { dir: this.dir.path, ...options });
    this.members.push(member);
    return member;
  }

  /** Every member's output, for failure messages. */
  report(): string {
    return this.members.map((m) =>
      `--- ${m.runtime} member ${m.id} (pid ${m.child.pid}) stdout:\n${
        m.child.lines.join("\n")
      }\nstderr:\n${m.child.stderr}`
    ).join("\n");
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.members.map((m) => m.child.kill("SIGKILL")));
    this.dir.remove();
  }
}

/** Waits until every member has `peerjoin` for every other one. */
async function meshed(members: Member[]): Promise<void> {
  await Promise.all(members.map(async (m) => {
    for (const other of members) {
      if (other !== m) await m.next("peerjoin", (e) => e.id === other.id);
    }
  }));
}

const sorted = (ids: number[]): number[] => [...ids].sort((a, b) => a - b);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

test(
  "Members started from one file join channel t with ids 1..4, one hub, sends, broadcasts and leave",
  PROCESS_TEST,
  async () => {
    const cluster = new Cluster();
    try {
      const members = (["deno", "bun", "deno", "bun"] as const).map((r) => cluster.start(r));
      const ready = await Promise.all(members.map((m) => m.ready()));
      assert.deepEqual(sorted(ready.map((e) => e.id)), range(4));
      assert.equal(ready.filter((e) => e.isHub).length, 1, `exactly one hub among ${JSON.stringify(ready)}`);
      for (const [i, e] of ready.entries()) assert.equal(e.pid, members[i].child.pid);
      await meshed(members);

      // Each member sends to the next id; the receiver sees the sender's id.
      for (const [i, m] of members.entries()) {
        m.command({ cmd: "send", to: members[(i + 1) % 4].id, name: "job", data: { n: i } });
      }
      for (const [i, m] of members.entries()) {
        const sender = members[(i + 3) % 4];
        const [got] = await m.alerts("job", sender.id);
        assert.deepEqual(got.data, { n: (i + 3) % 4 });
      }

      // A broadcast with a custom name reaches every member, the sender too, once;
      // the marker after it proves nothing else was still on the way.
      const caster = members[1];
      caster.command({ cmd: "broadcast", name: "custom.reload", data: { v: 2 } });
      caster.command({ cmd: "broadcast", name: "marker", data: null });
      for (const m of members) {
        await m.alerts("marker", caster.id);
        const got = m.events("alert", (e) => e.name === "custom.reload");
        assert.equal(got.length, 1, `member ${m.id} got ${JSON.stringify(got)}`);
        assert.equal(got[0].from, caster.id);
        assert.deepEqual(got[0].data, { v: 2 });
      }

      // A member that is not the hub closes: it sees `disconnect`, the others `peerleave` at once.
      const leaving = members.find((m) => !ready[members.indexOf(m)].isHub && m !== caster)!;
      leaving.command({ cmd: "close" });
      await leaving.next("disconnect");
      await leaving.next("closed");
      assert.equal(await within(WAIT, "exit of the closed member", leaving.child.exited), 0);
      for (const m of members.filter((m) => m !== leaving)) {
        const left = await m.next("peerleave", (e) => e.id === leaving.id);
        assert.equal(left.runtime, leaving.runtime);
        assert.deepEqual((await m.status()).peers, sorted(members.filter((o) => o !== leaving).map((o) => o.id)));
      }
    } finally {
      await cluster.stop();
    }
  },
);

test("A member killed and started again with the same name gets its old id back", PROCESS_TEST, async () => {
  const cluster = new Cluster();
  try {
    const host = cluster.start("deno");
    await host.ready();
    const other = cluster.start("bun");
    await other.ready();
    const worker = cluster.start("deno", { name: "w" });
    const first = await worker.ready();
    assert.deepEqual([host.id, other.id, first.id], [1, 2, 3]);
    assert.deepEqual(JSON.parse(readFileSync(join(cluster.dir.path, "t.ids.json"), "utf8")), { w: 3 });

    // Free id 2 as well, so that an id handed out by "lowest free" would differ from the remembered one.
    await worker.child.kill("SIGKILL");
    await other.child.kill("SIGKILL");
    await host.next("peerleave", (e) => e.id === 3);
    await host.next("peerleave", (e) => e.id === 2);

    const again = cluster.start("bun", { name: "w" });
    const second = await again.ready();
    assert.equal(second.id, 3);
    assert.equal(second.isHub, false);
    const joined = await host.next("peerjoin", (e) => e.pid === again.child.pid);
    assert.equal(joined.id, 3);
    assert.equal(joined.name, "w");

    const fresh = cluster.start("deno");
    assert.equal((await fresh.ready()).id, 2);
  } finally {
    await cluster.stop();
  }
});

test("A newcomer without a name does not get the id a name keeps while its member is away", PROCESS_TEST, async () => {
  const cluster = new Cluster();
  try {
    const host = cluster.start("deno");
    await host.ready();
    const worker = cluster.start("bun", { name: "w" });
    assert.equal((await worker.ready()).id, 2);
    await worker.child.kill("SIGKILL");
    await host.next("peerleave", (e) => e.id === 2);

    const fresh = cluster.start("bun");
    assert.equal((await fresh.ready()).id, 3, "id 2 is w's");
    const again = cluster.start("deno", { name: "w" });
    assert.equal((await again.ready()).id, 2);
  } finally {
    await cluster.stop();
  }
});

for (const hubRuntime of ["deno", "bun"] as const) {
  test(
    `When the ${hubRuntime} process hosting the hub is SIGKILLed the others elect a new hub and keep their ids`,
    PROCESS_TEST,
    async () => {
      const cluster = new Cluster();
      try {
        const hub = cluster.start(hubRuntime, { graceMs: 1000 });
        assert.equal((await hub.ready()).isHub, true);
        const survivors = (["bun", "deno", "bun"] as const).map((r) => cluster.start(r, { graceMs: 1000 }));
        await Promise.all(survivors.map((m) => m.ready()));
        await meshed([hub, ...survivors]);
        const ids = survivors.map((m) => m.id);

        const killedAt = Date.now();
        await hub.child.kill("SIGKILL");
        const changes = await Promise.all(survivors.map((m) => m.next("hubchange", (e) => e.hubId !== hub.id)));
        const times = changes.map((e) => e.at - killedAt);
        console.log(
          `failover after SIGKILL of the ${hubRuntime} hub: first hubchange ${Math.min(...times)} ms, ` +
            `all ${survivors.length} survivors ${Math.max(...times)} ms`,
        );
        const newHub = changes[0].hubId;
        for (const e of changes) {
          assert.equal(e.hubId, newHub, `survivors agree on the new hub: ${JSON.stringify(changes)}`);
        }
        assert.equal(changes.filter((e) => e.isHub).length, 1);
        assert.equal(changes.find((e) => e.isHub)!.id, newHub);
        assert.ok(ids.includes(newHub));

        // Ids kept, exactly one hub; the dead member leaves after the grace period.
        for (const m of survivors) {
          await m.next("peerleave", (e) => e.id === hub.id && /failover/.test(e.reason));
          const status = await m.status();
          assert.equal(status.id, m.id);
          assert.equal(status.connected, true);
          assert.deepEqual(status.peers, sorted(ids));
        }
        const statuses = await Promise.all(survivors.map((m) => m.status()));
        assert.deepEqual(statuses.filter((s) => s.isHub).map((s) => s.id), [newHub]);

        // Traffic resumes: every survivor sends to every other one.
        for (const m of survivors) {
          for (const to of survivors) {
            if (to !== m) m.command({ cmd: "send", to: to.id, name: "job", data: { after: m.id } });
          }
        }
        for (const m of survivors) {
          for (const from of survivors) {
            if (from === m) continue;
            const got = await m.alerts("job", from.id);
            assert.deepEqual(got.map((e) => e.data), [{ after: from.id }]);
          }
        }

        // A graceful exit of the new hub hands over at once to one of the two left.
        const hosting = survivors.find((m) => m.id === newHub)!;
        const rest = survivors.filter((m) => m !== hosting);
        const closedAt = Date.now();
        hosting.command({ cmd: "close" });
        const handover = await Promise.all(
          rest.map((m) => m.next("hubchange", (e) => e.hubId !== newHub && e.hubId !== hub.id)),
        );
        console.log(
          `handover after close() of the hosting member: ${Math.max(...handover.map((e) => e.at - closedAt))} ms`,
        );
        assert.equal(handover[0].hubId, handover[1].hubId);
        assert.equal(handover.filter((e) => e.isHub).length, 1);
        rest[0].command({ cmd: "send", to: rest[1].id, name: "job", data: "after handover" });
        await rest[1].alerts("job", rest[0].id, 2);
      } finally {
        await cluster.stop();
      }
    },
  );
}

test(
  "Two hub failovers closer than graceMs: a member that returns within the grace period of the second is kept",
  PROCESS_TEST,
  async () => {
    // Found by the chaos test: the grace timer of the first failover kept running through the second and
    // dropped members that were alive but had not yet reached the newest hub (their messages then lost).
    const GRACE = 5000;
    const cluster = new Cluster();
    try {
      const first = cluster.start("deno", { graceMs: GRACE });
      await first.ready();
      const [x, y, late] = (["bun", "deno", "bun"] as const).map((r) => cluster.start(r, { graceMs: GRACE }));
      await Promise.all([x.ready(), y.ready(), late.ready()]);
      await meshed([first, x, y, late]);

      // `late` sleeps through both failovers.
      process.kill(late.child.pid, "SIGSTOP");
      const firstKill = Date.now();
      await first.child.kill("SIGKILL");
      const changes = await Promise.all([x, y].map((m) => m.next("hubchange", (e) => e.hubId !== first.id)));
      const host = changes[0].hubId === x.id ? x : y;
      const survivor = host === x ? y : x;
      // The second failover comes 3.5 s after the first, well within the first one's grace period.
      await until(WAIT, "3.5 s after the first kill", () => Date.now() - firstKill >= 3500);
      const secondKill = Date.now();
      await host.child.kill("SIGKILL");
      await survivor.next("hubchange", (e) => e.hubId !== host.id && e.hubId !== first.id);

      // `late` wakes after the first failover's grace has run out but well within the second's.
      await until(WAIT, "the first grace period over", () => Date.now() - firstKill >= GRACE + 500);
      process.kill(late.child.pid, "SIGCONT");
      await late.next("hubchange", (e) => e.hubId === survivor.id);
      await until(WAIT, "the second grace period over", () => Date.now() - secondKill >= GRACE + 1000);

      const status = await survivor.status();
      assert.deepEqual(
        survivor.events("peerleave", (e) => e.id === late.id),
        [],
        "the member back within the second failover's grace period did not leave",
      );
      assert.ok(status.peers.includes(late.id), JSON.stringify(status.peers));
      // The two dead hosts did leave, after the grace period of the failover that found each gone.
      await survivor.next("peerleave", (e) => e.id === host.id && /failover/.test(e.reason));
      const left = survivor.events("peerleave", (e) => e.id === host.id)[0];
      assert.ok(left.at - secondKill >= GRACE, `left ${left.at - secondKill} ms after the second kill`);
      late.command({ cmd: "send", to: survivor.id, name: "job", data: "still here" });
      assert.deepEqual((await survivor.alerts("job", late.id)).map((e) => e.data), ["still here"]);
    } finally {
      await cluster.stop();
    }
  },
);

test(
  "A member that returns after the others gave up on it gets every alert sent after its return, both ways",
  PROCESS_TEST,
  async () => {
    const cluster = new Cluster();
    try {
      const hub = cluster.start("deno");
      await hub.ready();
      // The grace period only has to outlast a's handling of one command, even on a loaded machine.
      const a = cluster.start("bun", { graceMs: 1500 });
      await a.ready();
      const b = cluster.start("deno");
      await b.ready();
      await meshed([hub, a, b]);
      a.command({ cmd: "send", to: b.id, name: "job", data: "a1" });
      b.command({ cmd: "send", to: a.id, name: "job", data: "b1" });
      await b.alerts("job", a.id);
      await a.alerts("job", b.id);

      // b sleeps through the failover: a hosts the new hub and, after its grace period, gives up on b.
      // process.kill: Deno's ChildProcess.kill() signals a child once only, and SIGKILL must come last.
      // What a sends b meanwhile is queued, then reported undeliverable when a gives up.
      process.kill(b.child.pid, "SIGSTOP");
      await hub.child.kill("SIGKILL");
      a.command({ cmd: "send", to: b.id, name: "marker", data: "a2" });
      await a.next("peerleave", (e) => e.id === b.id && /failover/.test(e.reason));
      await a.next("undeliverable", (e) => e.to === b.id && e.name === "marker");
      process.kill(b.child.pid, "SIGCONT");
      await a.next("peerjoin", () => a.events("peerjoin", (e) => e.id === b.id).length === 2);
      await b.nth("hubchange", 2);

      // b never gets a2, and does not wait for it either: a3 and b2 arrive.
      a.command({ cmd: "send", to: b.id, name: "job", data: "a3" });
      b.command({ cmd: "send", to: a.id, name: "job", data: "b2" });
      assert.deepEqual((await b.alerts("job", a.id, 2)).map((e) => e.data), ["a1", "a3"]);
      assert.deepEqual((await a.alerts("job", b.id, 2)).map((e) => e.data), ["b1", "b2"]);
      assert.deepEqual(b.events("alert", (e) => e.name === "marker"), []);
    } finally {
      await cluster.stop();
    }
  },
);

test("Eight members joining at the same instant elect exactly one hub and get ids 1..8", PROCESS_TEST, async () => {
  const cluster = new Cluster();
  try {
    const members = range(8).map((i) => cluster.start(i % 2 === 0 ? "deno" : "bun"));
    const ready = await Promise.all(members.map((m) => m.ready()));
    assert.deepEqual(sorted(ready.map((e) => e.id)), range(8));
    const hubs = ready.filter((e) => e.isHub);
    assert.equal(hubs.length, 1, `exactly one hub among ${JSON.stringify(ready)}`);
    await meshed(members);
    const statuses = await Promise.all(members.map((m) => m.status()));
    assert.deepEqual(statuses.filter((s) => s.isHub).map((s) => s.id), [hubs[0].id]);
    for (const m of members) {
      assert.deepEqual((await m.next("hubchange")).hubId, hubs[0].id);
      assert.equal(m.events("hubchange").length, 1);
    }
  } finally {
    await cluster.stop();
  }
});

test(
  'A "client" member never hosts: it waits for a hub, and for the next one when that hub dies',
  PROCESS_TEST,
  async () => {
    const cluster = new Cluster();
    try {
      const client = cluster.start("bun", { role: "client", connectTimeout: WAIT });
      await client.next("started");
      const dual = cluster.start("deno");
      const dualReady = await dual.ready();
      const clientReady = await client.ready();
      assert.equal(dualReady.isHub, true);
      assert.equal(clientReady.isHub, false);
      assert.ok(clientReady.at >= dualReady.at, "the client became ready only after the dual member hosted the hub");
      assert.deepEqual([dual.id, client.id], [1, 2]);

      await dual.child.kill("SIGKILL");
      await client.next("disconnect");
      const next = cluster.start("deno");
      const nextReady = await next.ready();
      assert.equal(nextReady.isHub, true);
      // The new host may reuse id 1 (its holder is dead), so wait for the second hubchange, not for an id.
      const change = await client.nth("hubchange", 2);
      assert.equal(change.hubId, next.id);
      assert.equal(change.isHub, false);
      assert.equal(change.id, 2);
      assert.equal(client.events("hubchange", (e) => e.isHub).length, 0);
      const status = await client.status();
      assert.deepEqual([status.isHub, status.connected, status.id], [false, true, 2]);
    } finally {
      await cluster.stop();
    }
  },
);

/** In-process members on one temp dir, all closed by `stop()`. */
class Local {
  readonly dir = tempDir("ipcbus-channel-");
  readonly members: ChannelPeer[] = [];

  join(name = "t", options: ChannelOptions = {}): ChannelPeer {
    const member = channel(name, { dir: this.dir.path, ...options });
    this.members.push(member);
    return member;
  }

  async stop(): Promise<void> {
    for (const m of this.members.reverse()) await m.close();
    this.dir.remove();
  }
}

test(
  "close() while the member is taking the lock leaves no hub behind: the lock is free and nobody serves the socket",
  PROCESS_TEST,
  async () => {
    const local = new Local();
    try {
      // channel() starts its first join at once, so this close() always comes while the lock is being taken: the
      // race of a member whose close timer fires while it takes over from a host that just left.
      const member = local.join();
      await member.close();
      // The join resolves or rejects; either way it is over, and it must not have left a hub running.
      await within(WAIT, "the join to settle", member.ready.catch(() => {}));
      assert.equal(member.isHub, false);
      const lock = await tryLockFile(join(local.dir.path, "t.lock"));
      assert.ok(lock, "the lock is free once close() has resolved");
      await lock.release();
      assert.throws(() => statSync(member.path), { code: "ENOENT" });
    } finally {
      await local.stop();
    }
  },
);

test('A "hub" member refuses with HubExistsError while a live process hosts the hub', PROCESS_TEST, async () => {
  const cluster = new Cluster();
  const local = new Local();
  try {
    const other = cluster.start("deno", { dir: local.dir.path });
    assert.equal((await other.ready()).isHub, true);
    const hub = local.join("t", { role: "hub" });
    await assert.rejects(within(WAIT, "ready of the hub member", hub.ready), (err) => {
      assert.ok(err instanceof HubExistsError, String(err));
      assert.equal(err.code, "hub_exists");
      assert.match(err.message, /already has a live hub/);
      return true;
    });
    assert.equal(hub.isHub, false);

    // Once that process is gone, the lock is free and a "hub" member hosts.
    await other.child.kill("SIGKILL");
    const second = local.join("t", { role: "hub" });
    await within(WAIT, "ready of the second hub member", second.ready);
    assert.equal(second.isHub, true);
  } finally {
    await cluster.stop();
    await local.stop();
  }
});

test("options.id gives a free id, and a clear id_taken error when a live member holds it", PROCESS_TEST, async () => {
  const local = new Local();
  try {
    const first = local.join();
    await within(WAIT, "ready of the first member", first.ready);
    assert.equal(first.id, 1);
    const seven = local.join("t", { id: 7 });
    await within(WAIT, "ready of member 7", seven.ready);
    assert.equal(seven.id, 7);
    assert.equal(seven.isHub, false);

    const clash = local.join("t", { id: 7 });
    await assert.rejects(within(WAIT, "ready of the clashing member", clash.ready), (err) => {
      assert.ok(err instanceof IdTakenError, String(err));
      assert.equal(err.code, "id_taken");
      assert.match(err.message, /7/);
      return true;
    });
    assert.equal(clash.id, undefined);
    assert.equal(clash.connected, false);
    assert.deepEqual((await first.peers()).map((p) => p.id), [1, 7]);
    assert.throws(() => channel("t", { dir: local.dir.path, id: 0 }), RangeError);
  } finally {
    await local.stop();
  }
});

test("A second live member asking for a taken name is refused with NameTakenError", PROCESS_TEST, async () => {
  const local = new Local();
  try {
    const first = local.join("t", { name: "worker" });
    await within(WAIT, "ready of the first worker", first.ready);
    const second = local.join("t", { name: "worker" });
    await assert.rejects(within(WAIT, "ready of the second worker", second.ready), (err) => {
      assert.ok(err instanceof NameTakenError, String(err));
      assert.equal(err.code, "name_taken");
      assert.match(err.message, /worker/);
      return true;
    });
  } finally {
    await local.stop();
  }
});

test(
  "A name in ids.json keeps its id out of use: fresh unnamed members get the ids after it",
  PROCESS_TEST,
  async () => {
    const local = new Local();
    try {
      const named = local.join("t", { name: "worker" });
      await within(WAIT, "ready of the named member", named.ready);
      assert.equal(named.id, 1);
      await named.close();
      const fresh = [local.join(), local.join()];
      await within(WAIT, "ready of the unnamed members", Promise.all(fresh.map((m) => m.ready)));
      assert.deepEqual(fresh.map((m) => m.id).sort(), [2, 3]);
    } finally {
      await local.stop();
    }
  },
);

/** Resolves with the detail of the next `type` event on `target`, failing after `WAIT` ms. */
function nextEvent(target: EventTarget, type: string): Promise<unknown> {
  return within(
    WAIT,
    `${type} event`,
    new Promise((resolve) => {
      target.addEventListener(type, (e) => resolve((e as CustomEvent).detail), { once: true });
    }),
  );
}

test("A fresh process that takes over the hub leaves the reconnecting members their ids", PROCESS_TEST, async () => {
  const cluster = new Cluster();
  const local = new Local();
  try {
    // The old host has id 9, so "lowest free id" for a newcomer would be a live member's id.
    const old = cluster.start(currentRuntime === "deno" ? "bun" : "deno", { dir: local.dir.path, id: 9 });
    assert.equal((await old.ready()).isHub, true);
    // Clients, so that the newcomer is the only one that can host next.
    const a = local.join("t", { role: "client" });
    await within(WAIT, "ready of member a", a.ready);
    const b = local.join("t", { role: "client" });
    await within(WAIT, "ready of member b", b.ready);
    assert.deepEqual([a.id, b.id], [1, 2]);
    await old.next("peerjoin", (e) => e.id === 2);
    const errors: unknown[] = [];
    for (const m of [a, b]) m.addEventListener("error", (e) => errors.push((e as CustomEvent).detail));
    const back = Promise.all([nextEvent(a, "hubchange"), nextEvent(b, "hubchange")]);

    await old.child.kill("SIGKILL");
    const fresh = local.join();
    await within(WAIT, "ready of the newcomer", fresh.ready);
    assert.equal(fresh.isHub, true);
    assert.ok(![1, 2].includes(fresh.id), `the newcomer got id ${fresh.id}, held by a reconnecting member`);
    await back;
    assert.deepEqual(errors, []);
    assert.deepEqual([a.id, b.id, a.connected, b.connected], [1, 2, true, true]);
  } finally {
    await cluster.stop();
    await local.stop();
  }
});

test(
  "send, broadcast and request made before ready are queued and delivered in order once connected",
  PROCESS_TEST,
  async () => {
    const local = new Local();
    try {
      const first = local.join();
      const got: Array<{ name: string; data: unknown; sender: number }> = [];
      const record: AlertHandler = (data, ctx) => void got.push({ name: ctx.name, data, sender: ctx.sender });
      first.on({ early: record, everyone: record });
      first.handle("/whoami", ({ sender }) => ({ id: first.id, sender }));
      // Before ready: no id, not connected, but the calls are accepted.
      assert.equal(first.id, undefined);
      assert.equal(first.connected, false);
      first.broadcast("everyone", "from the first, queued");
      await within(WAIT, "ready of the first member", first.ready);

      const second = local.join();
      const undeliverable: unknown[] = [];
      second.addEventListener("undeliverable", (e) => undeliverable.push((e as CustomEvent).detail));
      assert.equal(second.connected, false);
      second.send(first.id, "early", 1);
      second.send(first.id, "early", 2);
      second.broadcast("everyone", "from the second, queued");
      second.send(99, "early", "nobody");
      const answer = second.request("/whoami", null, { to: first.id, timeout: WAIT });
      second.send(first.id, "early", 3);
      await within(WAIT, "ready of the second member", second.ready);
      assert.equal(second.id, 2);

      assert.deepEqual(await within(WAIT, "the queued request", answer), { id: 1, sender: 2 });
      await until(WAIT, "the five queued alerts", () => got.length >= 5);
      assert.deepEqual(got, [
        { name: "everyone", data: "from the first, queued", sender: 1 },
        { name: "early", data: 1, sender: 2 },
        { name: "early", data: 2, sender: 2 },
        { name: "everyone", data: "from the second, queued", sender: 2 },
        { name: "early", data: 3, sender: 2 },
      ]);
      assert.deepEqual(undeliverable, [{ to: 99, name: "early", reason: "no_such_peer" }]);
    } finally {
      await local.stop();
    }
  },
);

test(
  "Calls queued before connecting are bounded by queueLimit and fail with QueueFullError past it",
  PROCESS_TEST,
  async () => {
    const local = new Local();
    try {
      // A client with no hub around never connects, so everything it sends stays queued.
      const lonely = local.join("t", { role: "client", queueLimit: 2, connectTimeout: WAIT });
      lonely.send(1, "early", 1);
      lonely.broadcast("early", 2);
      assert.throws(() => lonely.send(1, "early", 3), (err) => {
        assert.ok(err instanceof QueueFullError, String(err));
        assert.match(err.message, /queueLimit/);
        return true;
      });
      await assert.rejects(lonely.request("/whoami"), QueueFullError);
      assert.equal(lonely.connected, false);
    } finally {
      await local.stop();
    }
  },
);

test(
  "The channel dir is created 0700, the socket is 0600, and channels of different names never meet",
  PROCESS_TEST,
  async () => {
    const local = new Local();
    try {
      const dir = join(local.dir.path, "nested", "channels");
      const alpha = channel("alpha", { dir });
      const beta = channel("beta", { dir });
      local.members.push(alpha, beta);
      await within(WAIT, "ready of both channels", Promise.all([alpha.ready, beta.ready]));
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(alpha.path).mode & 0o777, 0o600);
      assert.ok(statSync(alpha.path).isSocket());
      assert.equal(alpha.path, join(dir, "alpha.sock"));
      assert.equal(beta.path, join(dir, "beta.sock"));
      // Each hosts its own hub and sees only itself.
      assert.deepEqual([alpha.isHub, beta.isHub, alpha.id, beta.id], [true, true, 1, 1]);
      assert.deepEqual((await alpha.peers()).map((p) => p.id), [1]);
      assert.deepEqual((await beta.peers()).map((p) => p.id), [1]);
    } finally {
      await local.stop();
    }
  },
);
