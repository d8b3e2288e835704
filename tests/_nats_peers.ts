/** NATS scenarios for the tests: real servers, peers in this process and in child processes of either runtime. */
import { connect, type NatsConnectOptions, type Peer } from "../nats.ts";
import { JsonChild } from "./_json_child.ts";
import type { Runtime } from "./_helpers.ts";
import { type NatsServers, startNats } from "./_nats_servers.ts";

/** Every wait on a child, at most. */
export const WAIT = 20_000;
/** Above Bun's default of 5 s per test, so that the bounded waits are what fails first. */
export const NATS_TEST = { timeout: 90_000 };

/** One scenario: its servers, its own bus, and everything started on it, stopped by `cleanup()`. */
export class NatsScenario {
  readonly nats: NatsServers;
  readonly bus = `t${crypto.randomUUID().slice(0, 8)}`;
  readonly #children: JsonChild[] = [];
  readonly #peers: Peer[] = [];

  private constructor(nats: NatsServers) {
    this.nats = nats;
  }

  /** Starts `servers` nats-server processes (1, or 3 for a cluster). */
  static async start(servers = 1, config?: string): Promise<NatsScenario> {
    return new NatsScenario(await startNats({ servers, ...(config === undefined ? {} : { config }) }));
  }

  /**
   * Runs `body` on a fresh scenario and cleans it up however `body` ends.
   * `servers`/`config` as for {@linkcode start}.
   */
  static run(body: (s: NatsScenario) => Promise<void>): Promise<void>;
  static run(options: { servers?: number; config?: string }, body: (s: NatsScenario) => Promise<void>): Promise<void>;
  static async run(
    first: { servers?: number; config?: string } | ((s: NatsScenario) => Promise<void>),
    second?: (s: NatsScenario) => Promise<void>,
  ): Promise<void> {
    const [options, body] = typeof first === "function" ? [{}, first] : [first, second!];
    const s = await NatsScenario.start(options.servers, options.config);
    try {
      await body(s);
    } finally {
      await s.cleanup();
    }
  }

  get urls(): string[] {
    return this.nats.urls;
  }

  /** Connects a peer in this process to this scenario's bus. */
  async connect(options: Partial<NatsConnectOptions> = {}): Promise<Peer> {
    const peer = await connect({ servers: this.urls, bus: this.bus, ...options });
    this.#peers.push(peer);
    return peer;
  }

  /** Starts tests/fixtures/nats_peer.ts in `runtime` on this bus and waits until it is connected. */
  async child(runtime: Runtime, options: Record<string, unknown> = {}, servers = this.urls): Promise<JsonChild> {
    const child = new JsonChild(
      runtime,
      "tests/fixtures/nats_peer.ts",
      [servers.join(","), JSON.stringify({ bus: this.bus, ...options })],
      WAIT,
    );
    this.#children.push(child);
    // The child gives up by itself after its connectTimeout: wait a little longer than that for its verdict.
    const joinWait = Math.max(WAIT, Number(options.connectTimeout ?? 0) + 5_000);
    child.ready = await child.next("ready", (e) => e.ev === "ready" || e.ev === "connect_failed", joinWait);
    if (child.ready.ev !== "ready") {
      throw new Error(`NATS peer child could not connect: ${JSON.stringify(child.ready.error)}`);
    }
    return child;
  }

  async cleanup(): Promise<void> {
    try {
      await Promise.all(this.#children.map((child) => child.stop()));
      await Promise.all(this.#peers.map((peer) => peer.close().catch(() => {})));
    } finally {
      await this.nats.stop();
    }
  }
}

/** Waits until `peer.peers()` lists every id of `ids`, at most `ms`. */
export async function sees(peer: Peer, ids: number[], ms = WAIT): Promise<void> {
  const deadline = Date.now() + ms;
  while (true) {
    const have = (await peer.peers()).map((p) => p.id);
    if (ids.every((id) => have.includes(id))) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms: peer ${peer.id} sees ${have}, not ${ids}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
