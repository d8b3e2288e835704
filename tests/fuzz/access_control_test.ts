/**
 * Access control (issue 7, 4): no frame from an unauthenticated connection is
 * routed, no peer can take a live peer's id or name, and a frame claiming
 * another sender gets its connection dropped.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { AuthError, connect, type Hub, IpcError, type Peer, serve } from "../../mod.ts";
import { encodeCbor } from "../../src/codec/cbor.ts";
import { tempDir, until, within } from "../_helpers.ts";
import { concat } from "./_mutate.ts";
import { hello, message } from "./_hostile.ts";
import { codeOf, type Message, RawConn } from "./_raw.ts";

const WAIT = 5_000;
const TOKEN = "s3cret-token";
const d = encodeCbor("payload");

/** A hub with a token, two good peers, and a record of everything that reached them. */
class Guarded {
  readonly dir = tempDir("ipcbus-access-");
  readonly path = `${this.dir.path}/hub.sock`;
  hub!: Hub;
  a!: Peer;
  b!: Peer;
  /** Every alert and request that reached a, b or the hub's own peer, as "receiver: what from whom". */
  readonly reached: string[] = [];

  async start(): Promise<void> {
    this.hub = await serve({ path: this.path, auth: { token: TOKEN } });
    this.a = await connect({ path: this.path, name: "good-a", auth: { token: TOKEN } });
    this.b = await connect({ path: this.path, name: "good-b", auth: { token: TOKEN } });
    for (const [label, peer] of [["a", this.a], ["b", this.b], ["hub", this.hub.peer]] as const) {
      peer.on("*", (_, ctx) => void this.reached.push(`${label}: alert ${ctx.name} from ${ctx.sender}`));
      peer.handle("/victim/*", ({ route, sender }) => {
        this.reached.push(`${label}: request ${route} from ${sender}`);
        return "served";
      });
    }
    await until(WAIT, "the hub to know the routes", () => this.hub.stats().handlers >= 6);
  }

  /** The hub's routing counters, which nothing unauthenticated may move. */
  routed(): { alerts: number; requests: number; responses: number; peersJoined: number } {
    const { alerts, requests, responses, peersJoined } = this.hub.stats();
    return { alerts, requests, responses, peersJoined };
  }

  /** Checks, with a round trip between the good peers, that nothing from the raw connection arrived. */
  async nothingReached(before: ReturnType<Guarded["routed"]>, what: string): Promise<void> {
    // a's alert to b goes through the hub after everything the raw connection sent was read.
    const marker = new Promise<void>((resolve) => this.b.on("marker", () => resolve()));
    this.a.send(this.b.id, "marker", what);
    await within(WAIT, `${what}: the marker alert`, marker);
    this.b.off("marker");
    assert.deepEqual(this.reached, [], `${what}: frames were routed`);
    const after = this.routed();
    assert.deepEqual(after, { ...before, alerts: before.alerts + 1 }, `${what}: the hub routed something`);
    assert.equal(this.hub.stats().peers, 2, `${what}: a third peer joined`);
  }

  async close(): Promise<void> {
    await this.a?.close();
    await this.b?.close();
    await this.hub?.close({ timeout: 200 });
    this.dir.remove();
  }
}

async function withGuarded(body: (g: Guarded) => Promise<void>): Promise<void> {
  const g = new Guarded();
  try {
    await g.start();
    await body(g);
  } finally {
    await g.close();
  }
}

/** What an intruder sends hoping to get through: alerts, a broadcast, requests, a route claim; `f` is a guess at its id. */
function intrusion(g: Guarded, f: number): Uint8Array {
  return concat([
    message({ k: "a", f, t: g.b.id, n: "intrude", d }),
    message({ k: "a", f, n: "intrude-all", d }),
    message({ k: "a", f: g.a.id, t: g.b.id, n: "intrude-as-a", d }),
    message({ k: "q", f, t: g.a.id, r: 1, u: "/victim/x", d }),
    message({ k: "q", f, r: 2, u: "/victim/y", d }),
    message({ k: "q", f, r: 3, u: "/ipcbus/echo", d }),
    message({ k: "handle", patterns: [{ prefix: "/" }] }),
  ]);
}

function kinds(raw: RawConn): string {
  return raw.messages.map((m: Message) => `${m.k}${codeOf(m) ? `(${codeOf(m)})` : ""}`).join(", ");
}

test("A connection that sends frames before any hello gets an error, is closed, and none of its frames is routed", async () => {
  await withGuarded(async (g) => {
    const before = g.routed();
    const raw = await RawConn.open(g.path);
    try {
      await raw.write(intrusion(g, 3));
      await raw.whenClosed(WAIT, "the hub to close the connection");
      assert.deepEqual(raw.messages.map((m) => [m.k, codeOf(m)]), [["error", "protocol_error"]], kinds(raw));
    } finally {
      await raw.close();
    }
    await g.nothingReached(before, "frames before a hello");
  });
});

test("A hello without the token, or with a wrong one, is refused with auth_failed and nothing sent after it is routed", async () => {
  await withGuarded(async (g) => {
    const wrong: Array<[string, Record<string, unknown>]> = [
      ["no token", {}],
      ["an empty token", { token: "" }],
      ["a wrong token", { token: "s3cret-tokeN" }],
      ["a token one character short", { token: TOKEN.slice(0, -1) }],
      ["a token one character long", { token: `${TOKEN}!` }],
      ["the token of another hub", { token: "another-hub" }],
    ];
    for (const [what, extra] of wrong) {
      for (const pipelined of [true, false]) {
        const before = g.routed();
        const raw = await RawConn.open(g.path);
        const label = `${what}${pipelined ? ", frames pipelined behind the hello" : ", frames after the refusal"}`;
        try {
          // Behind the refused hello comes a hello with the right token, then the intrusion: too late for both.
          const after = concat([message(hello(undefined, { token: TOKEN })), intrusion(g, 3)]);
          await raw.write(
            pipelined ? concat([message(hello(undefined, extra)), after]) : message(hello(undefined, extra)),
          );
          const refusal = await raw.next(WAIT, `${label}: the refusal`, () => true);
          assert.equal(refusal?.k, "refuse", `${label}: got ${kinds(raw)}`);
          assert.equal(codeOf(refusal), "auth_failed");
          if (!pipelined) await raw.write(after);
          await raw.whenClosed(WAIT, `${label}: the hub to close the connection`);
          assert.ok(!raw.messages.some((m) => m.k === "welcome"), `${label}: welcomed after a refusal: ${kinds(raw)}`);
        } finally {
          await raw.close();
        }
        await g.nothingReached(before, label);
      }
    }
    await assert.rejects(connect({ path: g.path, auth: { token: "wrong" }, timeout: WAIT }), AuthError);
    await assert.rejects(connect({ path: g.path, timeout: WAIT }), AuthError);
  });
});

test("No peer can take a live peer's id or name, and a connection refused for trying routes nothing", async () => {
  await withGuarded(async (g) => {
    const claims: Array<[string, Record<string, unknown>, string]> = [
      ["a's id", hello(g.a.id, { token: TOKEN }), "id_taken"],
      ["b's id", hello(g.b.id, { token: TOKEN }), "id_taken"],
      ["a's name", hello(undefined, { token: TOKEN, name: "good-a" }), "name_taken"],
      ["b's name with a free id", hello(77, { token: TOKEN, name: "good-b" }), "name_taken"],
      ["a's id and name", hello(g.a.id, { token: TOKEN, name: "good-a" }), "name_taken"],
    ];
    for (const [what, claim, code] of claims) {
      const before = g.routed();
      const raw = await RawConn.open(g.path);
      try {
        // Then a hello that would be fine on its own: too late, the connection was refused.
        await raw.write(concat([message(claim), message(hello(undefined, { token: TOKEN })), intrusion(g, g.a.id)]));
        const refusal = await raw.next(WAIT, `${what}: the refusal`, () => true);
        assert.deepEqual([refusal?.k, codeOf(refusal)], ["refuse", code], `${what}: got ${kinds(raw)}`);
        await raw.whenClosed(WAIT, `${what}: the hub to close the connection`);
        assert.ok(!raw.messages.some((m) => m.k === "welcome"), `${what}: welcomed: ${kinds(raw)}`);
      } finally {
        await raw.close();
      }
      await g.nothingReached(before, `claiming ${what}`);
    }

    // The hub's own id 0 cannot be asked for at all.
    const raw = await RawConn.open(g.path);
    try {
      await raw.write(message(hello(0, { token: TOKEN })));
      await raw.whenClosed(WAIT, "the hub to close a connection asking for id 0");
      assert.deepEqual(raw.messages.map((m) => [m.k, codeOf(m)]), [["error", "protocol_error"]], kinds(raw));
    } finally {
      await raw.close();
    }

    const err = await connect({ path: g.path, name: "good-a", auth: { token: TOKEN }, timeout: WAIT }).then(
      (peer) => peer.close().then(() => assert.fail("connected with a live peer's name")),
      (e) => e,
    );
    assert.ok(err instanceof IpcError && err.code === "name_taken", String(err));

    // Once a peer has left, its id and name are free again.
    const temp = await connect({ path: g.path, name: "temp", auth: { token: TOKEN } });
    const tempId = temp.id;
    await temp.close();
    await until(WAIT, "the hub to see temp leave", () => g.hub.stats().peers === 2);
    const heir = await RawConn.open(g.path);
    try {
      await heir.write(message(hello(tempId, { token: TOKEN, name: "temp" })));
      const welcome = await heir.next(WAIT, "the welcome of temp's heir", (m) => m.k !== "join");
      assert.deepEqual([welcome?.k, welcome?.id], ["welcome", tempId], kinds(heir));
    } finally {
      await heir.close();
    }
  });
});

test("A peer that sends a frame claiming another peer's id is dropped, and the frame goes nowhere", async () => {
  await withGuarded(async (g) => {
    const spoofs = [
      { k: "a", f: g.a.id, t: g.b.id, n: "spoof", d },
      { k: "a", f: g.a.id, n: "spoof-all", d },
      { k: "a", f: 0, t: g.b.id, n: "spoof-hub", d },
      { k: "q", f: g.b.id, t: g.a.id, r: 9, u: "/victim/z", d },
      { k: "q", f: g.b.id, r: 10, u: "/victim/z", d },
      { k: "p", f: g.a.id, t: g.b.id, r: 1, d },
      { k: "x", f: g.a.id, t: g.b.id, r: 1, e: { name: "E", message: "m" } },
      { k: "ack", f: g.a.id, t: g.b.id, s: 1 },
    ];
    for (const spoof of spoofs) {
      const what = `${spoof.k} with f = ${spoof.f}`;
      const raw = await RawConn.open(g.path);
      try {
        await raw.write(message(hello(undefined, { token: TOKEN })));
        const welcome = await raw.next(WAIT, `${what}: the welcome`, (m) => m.k === "welcome" || m.k === "refuse");
        assert.equal(welcome?.k, "welcome");
        const from = raw.messages.length;
        const before = g.routed();
        await raw.write(message(spoof));
        await raw.whenClosed(WAIT, `${what}: the hub to drop the connection`);
        const last = raw.messages.slice(from).filter((m) => m.k === "error").at(-1);
        assert.equal(codeOf(last), "protocol_error", `${what}: got ${kinds(raw)}`);
        await until(WAIT, `${what}: the spoofer to be gone`, () => g.hub.stats().peers === 2);
        await g.nothingReached({ ...before, peersJoined: g.routed().peersJoined }, what);
      } finally {
        await raw.close();
      }
    }
  });
});
