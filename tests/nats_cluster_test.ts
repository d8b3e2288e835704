/**
 * The bus over a real three-server NATS cluster (issue 15): Deno and Bun
 * peers connected to different servers exchange alerts, broadcasts and
 * requests; then one server is SIGKILLed, its peers reconnect to the others
 * and carry on, requests in flight reject with a typed error, nobody crashes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { JsonChild } from "./_json_child.ts";
import { NATS_TEST, NatsScenario } from "./_nats_peers.ts";

const TYPED = new Set(["PeerLeftError", "ConnectError", "TimeoutError", "ClosedError"]);

/** Runs `op` on `child` until it succeeds (reconnection is under way), at most `ms`. */
async function eventually(child: JsonChild, op: string, args: Record<string, unknown>, ms = 15_000) {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    const answer = await child.run(op, args);
    if (answer.ev === "done" && !answer.result?.error) return answer.result;
    last = answer.error ?? answer.result?.error;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${op} ${JSON.stringify(args)} kept failing on ${child.runtime} child: ${JSON.stringify(last)}`);
}

/** Sends (`send` or `broadcast` with `args`) until `receivers` all got one copy: messages sent while a peer reconnects are lost. */
async function arrives(sender: JsonChild, op: string, args: Record<string, unknown>, receivers: JsonChild[]) {
  for (let i = 0; i < 30; i++) {
    const data = `${args.data}-${i}`;
    await sender.run(op, { ...args, data });
    try {
      for (const r of receivers) await r.next(`alert ${data}`, (e) => e.ev === "alert" && e.data === data, 500);
      return;
    } catch {
      // Lost while reconnecting: send again.
    }
  }
  throw new Error(`${op} ${JSON.stringify(args)} from ${sender.runtime} peer ${sender.id} never arrived`);
}

/** Waits until `child` lists `count` peers. */
async function seesAll(child: JsonChild, count: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await child.cmd("peers")).length < count) {
    if (Date.now() > deadline) throw new Error(`${child.runtime} peer ${child.id} does not see ${count} peers`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test(
  "A three-server NATS cluster carries alerts, broadcasts and requests between Deno and Bun peers on different servers, and they carry on after one server is SIGKILLed",
  NATS_TEST,
  async () => {
    const s = await NatsScenario.start(3);
    try {
      const [u1, u2, u3] = s.urls;
      const a = await s.child("deno", { name: "a", requestTimeout: 20_000 }, [u1]);
      const b = await s.child("bun", { name: "b" }, [u2]);
      const c = await s.child("bun", { name: "c", requestTimeout: 20_000 }, [u3]);
      const d = await s.child("deno", { name: "d" }, [u3]);
      const all = [a, b, c, d];
      assert.deepEqual(all.map((p) => p.id).sort(), [1, 2, 3, 4]);
      for (const p of all) await p.cmd("on", { name: "note" });
      await b.cmd("handle", { route: "/work" });
      await d.cmd("handle", { route: "/work" });
      await c.cmd("handle", { route: "/hang", mode: "hang" });
      await b.cmd("handle", { route: "/hang-b", mode: "hang" });
      for (const p of all) await seesAll(p, 4);

      // Alerts by name and by id, across servers.
      await a.cmd("send", { to: "c", name: "note", data: "a->c" });
      await a.cmd("send", { to: d.id, name: "note", data: "a->d" });
      await b.cmd("send", { to: "a", name: "note", data: "b->a" });
      await c.next("a's note", (e) => e.ev === "alert" && e.data === "a->c" && e.sender === a.id);
      await d.next("a's note", (e) => e.ev === "alert" && e.data === "a->d");
      await a.next("b's note", (e) => e.ev === "alert" && e.data === "b->a" && e.sender === b.id);

      // A broadcast reaches all four once.
      await c.cmd("broadcast", { name: "note", data: "c->all" });
      for (const p of all) await p.next("c's broadcast", (e) => e.ev === "alert" && e.data === "c->all");

      // Requests from a go to b and d in turn (once a knows both routes).
      const seen = new Set<number>();
      for (let i = 0; i < 50 && seen.size < 2; i++) {
        const r = await a.cmd("request", { route: "/work", data: i, timeout: 5000 });
        if (r.value) seen.add(r.value.by);
      }
      const by: number[] = [];
      for (let i = 0; i < 4; i++) {
        by.push((await a.cmd("request", { route: "/work", data: i, timeout: 5000 })).value.by);
      }
      assert.deepEqual(by.sort(), [b.id, b.id, d.id, d.id].sort());

      // Requests in flight across the server about to die: a -> c (c's server dies), c -> b (c's own connection dies).
      await a.cmd("request_async", { route: "/hang", to: c.id, tag: "a-to-c", timeout: 20_000 });
      await c.next("a's request", (e) => e.ev === "request" && e.route === "/hang");
      await c.cmd("request_async", { route: "/hang-b", to: b.id, tag: "c-to-b", timeout: 20_000 });
      await b.next("c's request", (e) => e.ev === "request" && e.route === "/hang-b");

      await s.nats.servers[2].kill("SIGKILL");

      const aToC = await a.next("a's request rejected", (e) => e.ev === "rejected" && e.tag === "a-to-c");
      assert.ok(TYPED.has(aToC.error.name), JSON.stringify(aToC.error));
      assert.ok(aToC.ms < 15_000, `rejected after ${aToC.ms} ms`);
      const cToB = await c.next("c's request rejected", (e) => e.ev === "rejected" && e.tag === "c-to-b");
      assert.ok(TYPED.has(cToB.error.name), JSON.stringify(cToB.error));

      // c and d reconnected to the surviving servers and carry on.
      await arrives(a, "send", { to: "c", name: "note", data: "after" }, [c]);
      const served = await eventually(c, "request", { route: "/work", to: d.id, data: "after", timeout: 3000 });
      assert.equal(served.value.by, d.id);
      await arrives(d, "broadcast", { name: "note", data: "after-all" }, all);
      // The leases' bucket has two of its three replicas left: a newcomer still gets an id and sees everyone.
      // Its lease waits for the bucket's new stream leader: on a loaded machine that election can take longer than the default 10 s.
      const late = await s.child("bun", { name: "late", connectTimeout: 30_000 }, [u1]);
      assert.equal(late.id, 5);
      await seesAll(late, 5);
      for (const p of all) assert.ok(p.running, `${p.runtime} peer ${p.id} is still running`);
      assert.deepEqual(all.flatMap((p) => p.events((e) => e.ev === "disconnect")), []);
    } finally {
      await s.cleanup();
    }
  },
);
