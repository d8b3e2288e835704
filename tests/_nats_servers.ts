/**
 * Real `nats-server` processes for the NATS tests and the cluster demo: one
 * server or a three-server cluster on loopback, JetStream on, each in its own
 * temporary directory, ready when its monitoring endpoint says so, killed by
 * pid. The binary is `IPCBUS_NATS_SERVER` or `nats-server` from `PATH`; where
 * neither exists, `startNats` throws one line naming the install command.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** One running `nats-server`. */
export interface NatsServer {
  readonly name: string;
  readonly pid: number;
  /** Its client URL, `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly running: boolean;
  /** Its log (stderr), for failure messages. */
  log(): string;
  /** Sends `signal` and waits for the exit, at most `ms`. */
  kill(signal?: NodeJS.Signals, ms?: number): Promise<void>;
}

/** Servers started together, and their temporary directory. */
export interface NatsServers {
  readonly servers: NatsServer[];
  /** Every client URL. */
  readonly urls: string[];
  /** Kills every server still running (SIGKILL) and removes the directory. */
  stop(): Promise<void>;
}

const INSTALL_HINT =
  "nats-server not found: install it (apt-get install nats-server, or brew install nats-server) or set IPCBUS_NATS_SERVER";

/**
 * The `nats-server` binary to run: `IPCBUS_NATS_SERVER`, else `nats-server`
 * from `PATH`, else Debian's `/usr/sbin/nats-server` (not on a normal user's
 * `PATH`). Throws one line naming the install command when there is none.
 */
export function natsServerBin(): string {
  const candidates = process.env.IPCBUS_NATS_SERVER
    ? [process.env.IPCBUS_NATS_SERVER]
    : ["nats-server", "/usr/sbin/nats-server"];
  for (const bin of candidates) {
    const probe = spawnSync(bin, ["--version"], { stdio: "ignore" });
    if (!probe.error && probe.status === 0) return bin;
  }
  throw new Error(INSTALL_HINT);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

interface Ports {
  client: number;
  http: number;
  cluster: number;
}

function config(name: string, dir: string, ports: Ports, routes: number[] | undefined, extra: string): string {
  const lines = [
    extra,
    `server_name: ${name}`,
    `listen: 127.0.0.1:${ports.client}`,
    `http: 127.0.0.1:${ports.http}`,
    `jetstream { store_dir: ${JSON.stringify(join(dir, name))} }`,
  ];
  if (routes) {
    lines.push(
      `cluster { name: ipcbus-test, listen: 127.0.0.1:${ports.cluster}, routes: [${
        routes.map((p) => `nats://127.0.0.1:${p}`).join(", ")
      }] }`,
    );
  }
  return lines.join("\n") + "\n";
}

class Server implements NatsServer {
  readonly name: string;
  readonly url: string;
  readonly http: number;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #log = "";

  constructor(bin: string, name: string, conf: string, ports: Ports) {
    this.name = name;
    this.url = `nats://127.0.0.1:${ports.client}`;
    this.http = ports.http;
    this.#child = spawn(bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    this.#child.stderr!.on("data", (chunk: Uint8Array) => {
      if (this.#log.length < 200_000) this.#log += new TextDecoder().decode(chunk);
    });
    this.#exited = new Promise((resolve) => this.#child.once("exit", () => resolve()));
  }

  get pid(): number {
    return this.#child.pid!;
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  log(): string {
    return this.#log;
  }

  /** Resolves once `/healthz` answers ok (JetStream included); fails if the server exits or `ms` pass. */
  async ready(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`nats-server ${this.name} exited at start:\n${this.#log.slice(-2000)}`);
      try {
        const res = await fetch(`http://127.0.0.1:${this.http}/healthz`, { signal: AbortSignal.timeout(1000) });
        const body = await res.text();
        if (res.ok && body.includes("ok")) return;
      } catch {
        // Not listening yet.
      }
      await Promise.race([this.#exited, new Promise((resolve) => setTimeout(resolve, 50))]);
    }
    throw new Error(`nats-server ${this.name} not healthy within ${ms} ms:\n${this.#log.slice(-2000)}`);
  }

  /** Number of routes to other servers, from the monitoring endpoint. */
  async routes(): Promise<number> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.http}/routez`, { signal: AbortSignal.timeout(1000) });
      return ((await res.json()) as { num_routes: number }).num_routes;
    } catch {
      return -1;
    }
  }

  async kill(signal: NodeJS.Signals = "SIGTERM", ms = 10_000): Promise<void> {
    if (!this.running) return;
    this.#child.kill(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#child.kill("SIGKILL");
        resolve();
      }, ms);
    });
    await Promise.race([this.#exited, late]);
    clearTimeout(timer);
    await this.#exited;
  }
}

/** Options of {@linkcode startNats}. */
export interface StartNatsOptions {
  /** 1 for a single server, 3 for a cluster. @default {1} */
  servers?: number;
  /** Cap on the whole start, in ms. @default {20000} */
  timeout?: number;
  /** More configuration for every server, e.g. `authorization { token: "s3cret" }`. */
  config?: string;
}

/**
 * Starts one server, or a cluster of `servers` with routes between all of
 * them, JetStream on, and waits until every one is healthy and, in a
 * cluster, routed to all the others.
 */
export async function startNats(options: StartNatsOptions = {}): Promise<NatsServers> {
  const count = options.servers ?? 1;
  const timeout = options.timeout ?? 20_000;
  const bin = natsServerBin();
  // A port picked here may be taken by another process before the server binds it: try again then.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), "ipcbus-nats-"));
    const servers: Server[] = [];
    const stop = async () => {
      await Promise.all(servers.map((s) => s.kill("SIGKILL")));
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      const ports: Ports[] = [];
      for (let i = 0; i < count; i++) {
        ports.push({ client: await freePort(), http: await freePort(), cluster: await freePort() });
      }
      const routes = count > 1 ? ports.map((p) => p.cluster) : undefined;
      for (let i = 0; i < count; i++) {
        const name = `n${i + 1}`;
        const conf = join(dir, `${name}.conf`);
        writeFileSync(conf, config(name, dir, ports[i], routes, options.config ?? ""));
        servers.push(new Server(bin, name, conf, ports[i]));
      }
      const deadline = Date.now() + timeout;
      await Promise.all(servers.map((s) => s.ready(timeout)));
      while (count > 1 && (await Promise.all(servers.map((s) => s.routes()))).some((n) => n < count - 1)) {
        if (Date.now() > deadline) throw new Error(`nats cluster not routed within ${timeout} ms`);
        if (servers.some((s) => !s.running)) throw new Error("a nats-server of the cluster exited at start");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return { servers, urls: servers.map((s) => s.url), stop };
    } catch (err) {
      lastError = err;
      await stop();
    }
  }
  throw lastError;
}
