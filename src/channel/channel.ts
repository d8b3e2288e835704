import {
  AuthError,
  ConnectError,
  ErrorCode,
  HubExistsError,
  IpcError,
  PermissionError,
  UnsupportedRuntimeError,
} from "../errors.ts";
import { acceptConnection, type Hub, makeHub, startHub } from "../bus/hub.ts";
import { BUS_DEFAULTS } from "../bus/hub_settings.ts";
import { makePeer, Peer, type PeerSettings } from "../bus/peer.ts";
import { attachPeer, hubHostOf, inPeerView, peerView } from "../bus/attach_peer.ts";
import type { PeerEventMap } from "../bus/peer_events.ts";
import type { Hello } from "../bus/protocol.ts";
import { addBuiltinRoutes, BUILTIN_ROUTES } from "../bus/builtin_routes.ts";
import { queueLimits, type QueueOptions, type SlowConsumerOptions, slowConsumerTimeout } from "../bus/queue_options.ts";
import { watchSocket } from "../socket/serve.ts";
import { ReliableDelivery } from "./reliable_delivery.ts";
import { dial, listen } from "../transport/listen.ts";
import { memoryConnectionPair } from "../transport/memory.ts";
import { type FileLock, tryLockFile } from "../transport/file_lock.ts";
import {
  type ChannelFiles,
  channelFiles,
  ensureToken,
  liveMemberIds,
  readIds,
  readToken,
  writeIds,
} from "./channel_files.ts";

/** How a channel member takes part in hosting the hub. */
export const ChannelRole = {
  /** May host the hub; the default. */
  Dual: "dual",
  /** Never hosts; waits and retries until a hub exists. */
  Client: "client",
  /** Hosts, and fails if another live process already does. */
  Hub: "hub",
} as const;

/** One of the values of {@linkcode ChannelRole}. */
export type ChannelRole = typeof ChannelRole[keyof typeof ChannelRole];

/** Options of {@linkcode channel}. */
export interface ChannelOptions extends QueueOptions, SlowConsumerOptions {
  /** Directory of the channel's socket, lock and id files; default `$XDG_RUNTIME_DIR/ipcbus` or `<tmpdir>/ipcbus-<uid>`. */
  dir?: string;
  /**
   * `"dual"`, `"client"` or `"hub"`.
   *
   * @default {"dual"}
   */
  role?: ChannelRole;
  /** Ask for this member id; fails if a live member holds it. */
  id?: number;
  /** Member name: a process restarting with the same name gets its old id back. */
  name?: string;
  /**
   * Milliseconds `ready` waits for a hub before rejecting with `ConnectError`.
   *
   * @default {10000}
   */
  connectTimeout?: number;
  /**
   * Calls queued before the channel connects, and alerts awaiting
   * acknowledgement, at most; past it `QueueFullError`.
   *
   * @default {10000}
   */
  queueLimit?: number;
  /**
   * Require a shared secret in the handshake: the first host writes a random
   * token to `<dir>/<name>.token` (mode `0600`), and every member reads it,
   * so only processes that can read that file can join.
   *
   * @default {false}
   */
  auth?: boolean;
  /**
   * Milliseconds members known before a failover stay in view while they reconnect.
   *
   * @default {2000}
   */
  graceMs?: number;
  /**
   * Default request timeout in ms.
   *
   * @default {10000}
   */
  requestTimeout?: number;
}

/** Detail of the `hubchange` event. */
export interface HubChangeDetail {
  /** Id of the member now hosting the hub. */
  hubId: number | undefined;
}

/** The events of a channel member: a peer's, and `hubchange`. */
export interface ChannelEventMap extends PeerEventMap {
  /** Another member hosts the hub now (or this one, at the first join). */
  hubchange: CustomEvent<HubChangeDetail>;
}

const RETRY_MIN_MS = 5;
const RETRY_MAX_MS = 50;

/** What the next `ChannelPeer` constructed is made of: members are made by `channel()` only. */
let nextMember:
  | { name: string; options: ChannelOptions; files: ChannelFiles; role: ChannelRole; settings: PeerSettings }
  | undefined;

function takeMember(): NonNullable<typeof nextMember> {
  const made = nextMember;
  nextMember = undefined;
  if (!made) throw new TypeError("Channel members are made by channel(), not with new ChannelPeer()");
  return made;
}

/**
 * A member of a self-hosting channel: a {@linkcode Peer} whose hub runs in
 * whichever member took the channel's lock first, and moves to another
 * member when that process dies. Made by {@linkcode channel}.
 *
 * @example
 * ```ts
 * import { channel } from "@ipcbus/ipcbus";
 * const ch = channel("myapp");
 * ch.addEventListener("hubchange", (e) => console.log(e.detail.hubId));
 * await ch.ready;
 * console.log(ch.id, ch.isHub);
 * ```
 */
export class ChannelPeer extends Peer<ChannelEventMap> {
  readonly #made = takeMember();
  readonly #name: string = this.#made.name;
  readonly #files: ChannelFiles = this.#made.files;
  readonly #options: ChannelOptions = this.#made.options;
  readonly #role: ChannelRole = this.#made.role;
  /** The peer's settings: the auth token is filled in once the token file exists. */
  readonly #settings: PeerSettings = this.#made.settings;
  #hub: Hub | undefined;
  #lock: FileLock | undefined;
  #stopped = false;
  /** Id and incarnation of the member hosting the hub we last connected to. */
  #lastHub: string | undefined;
  #lost: (() => void) | undefined;
  /** The join attempt under way, if any: `close()` waits for it, so that a hub it takes is dropped, not left serving. */
  #attempt: Promise<unknown> | undefined;
  /** Ids of the last host's live members, kept from others until `#heldUntil` while they reconnect. */
  #heldIds = new Set<number>();
  #heldUntil = 0;
  /** Resolves once the member has an id; rejects if no hub is reachable within `connectTimeout`. */
  readonly ready: Promise<void> = this.#start();

  /** Starts the member: its listeners, then the join loop. */
  #start(): Promise<void> {
    this.addEventListener("disconnect", () => this.#lost?.());
    for (const type of ["connect", "peerjoin", "peerleave"]) this.addEventListener(type, () => this.#recordMembers());
    this.addEventListener("connect", () => {
      const hubId = hubHostOf(this);
      // A new host may reuse the id of the dead one, so the incarnation tells hubs apart.
      const hub = `${hubId}/${peerView(this).find((p) => p.id === hubId)?.inc}`;
      if (hub !== this.#lastHub) {
        this.#lastHub = hub;
        this.dispatchEvent(new CustomEvent<HubChangeDetail>("hubchange", { detail: { hubId } }));
      }
    });
    const ready = this.#run();
    // `ready` is also awaited by users; a rejection they did not await must not crash the process.
    ready.catch(() => {});
    return ready;
  }

  /** The channel's name. */
  get channel(): string {
    return this.#name;
  }

  /** Whether this process hosts the channel's hub right now. */
  get isHub(): boolean {
    return this.#hub !== undefined;
  }

  /** The channel's socket path. */
  get path(): string {
    return this.#files.socket;
  }

  /** The hub hosted in this process, if any: its stats, peers. */
  get hub(): Hub | undefined {
    return this.#hub;
  }

  async #run(): Promise<void> {
    const deadline = Date.now() + (this.#options.connectTimeout ?? 10_000);
    await this.#joinUntil(deadline);
    void this.#stayJoined();
  }

  /** After each loss of the hub, join again: host it if the lock is free, else connect to whoever took it. */
  async #stayJoined(): Promise<void> {
    while (!this.#stopped) {
      await new Promise<void>((resolve) => (this.#lost = resolve));
      this.#lost = undefined;
      if (this.#stopped) return;
      await this.#dropHub();
      try {
        // Members wait out a whole grace period for the new hub before giving up.
        await this.#joinUntil(Date.now() + Math.max(this.#options.connectTimeout ?? 10_000, 2000));
      } catch (err) {
        this.dispatchEvent(new CustomEvent("error", { detail: err }));
        if (!this.#stopped) await this.close();
        return;
      }
    }
  }

  async #joinUntil(deadline: number): Promise<void> {
    let attempt = 0;
    let lastError: unknown;
    while (!this.#stopped) {
      try {
        const attempt = this.#joinOnce();
        this.#attempt = attempt.catch(() => {});
        if (await attempt) return;
      } catch (err) {
        if (
          // Retrying cannot help these: ready rejects with them at once.
          err instanceof HubExistsError || err instanceof AuthError || err instanceof PermissionError ||
          err instanceof UnsupportedRuntimeError ||
          (err instanceof IpcError && (err.code === ErrorCode.IdTaken || err.code === ErrorCode.NameTaken))
        ) {
          throw err;
        }
        lastError = err;
      }
      if (Date.now() >= deadline) {
        throw new ConnectError(
          `Cannot join channel ${this.#name}: no hub reachable at ${this.#files.socket} within the connect timeout`,
          { cause: lastError },
        );
      }
      const backoff = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempt++, 4));
      await new Promise((resolve) => setTimeout(resolve, backoff * (0.5 + Math.random())));
    }
    throw new ConnectError(`Channel ${this.#name} is closed`);
  }

  /** One try: returns true when joined. */
  async #joinOnce(): Promise<boolean> {
    if (this.#role !== ChannelRole.Client) {
      const lock = await tryLockFile(this.#files.lock);
      if (lock) {
        await this.#host(lock);
        return true;
      }
      if (this.#role === ChannelRole.Hub) {
        throw new HubExistsError(`Channel ${this.#name} already has a live hub (lock ${this.#files.lock} is held)`);
      }
    }
    if (this.#options.auth) {
      // The host writes the token file before it binds the socket: no file yet means no hub yet.
      const token = readToken(this.#files.token);
      if (token === undefined) return false;
      this.#settings.token = token;
    }
    const conn = await dial(this.#files.socket, { timeout: 1000 });
    await attachPeer(this, conn, this.#options.connectTimeout ?? 10_000);
    return true;
  }

  /** Holding the lock, and only then, replace the socket file and serve. */
  async #host(lock: FileLock): Promise<void> {
    let hub: Hub | undefined;
    try {
      const token = this.#options.auth ? ensureToken(this.#files.token) : undefined;
      if (token !== undefined) this.#settings.token = token;
      const listener = await listen(this.#files.socket, { mode: 0o600 });
      const limits = queueLimits(this.#options);
      const registry = readIds(this.#files.ids);
      // The ids the registry gives names, kept in step with it by #assignId.
      const reserved = new Set(Object.values(registry));
      // A process that never was a member knows nobody: without this, it would
      // hand the ids of members still reconnecting to its own member or to newcomers.
      this.#heldIds = new Set(liveMemberIds(this.#files.members));
      this.#heldUntil = Date.now() + (this.#options.graceMs ?? 2000);
      hub = makeHub(listener, {
        ...limits,
        slowConsumerTimeout: slowConsumerTimeout(this.#options),
        handshakeTimeout: BUS_DEFAULTS.handshakeTimeout,
        closeTimeout: 500,
        ownPeer: false,
        socketWatch: watchSocket(this.#files.socket, 0o600),
        ...(token === undefined ? {} : { token }),
        assignId: (hello, isFree, from) => this.#assignId(registry, reserved, hello, isFree, from),
      }, { ...limits, requestTimeout: BUS_DEFAULTS.requestTimeout, dropOldestBroadcasts: false });
      this.#hub = hub;
      this.#lock = lock;
      const [hubSide, memberSide] = memoryConnectionPair();
      acceptConnection(hub, hubSide, { host: true });
      // The hosting member serves the hub's built-in routes while it hosts.
      addBuiltinRoutes(this, hub);
      await attachPeer(this, memberSide, BUS_DEFAULTS.handshakeTimeout);
      await startHub(hub);
    } catch (err) {
      this.#hub = undefined;
      this.#lock = undefined;
      await hub?.close({ timeout: 0 });
      await lock.release();
      throw err;
    }
  }

  /**
   * Names keep their ids across restarts; ids of members away during a
   * failover are held for them. A newcomer without a known id gets the lowest
   * id that is free and reserved for nobody, looked for from `from` up.
   */
  #assignId(
    registry: Record<string, number>,
    reserved: Set<number>,
    hello: Hello,
    isFree: (id: number) => boolean,
    from: number,
  ): number {
    const holding = Date.now() < this.#heldUntil;
    const taken = (id: number) =>
      !isFree(id) || reserved.has(id) || inPeerView(this, id) || (holding && this.#heldIds.has(id));
    let id: number | undefined;
    if (hello.name !== undefined) {
      const known = registry[hello.name];
      if (known !== undefined && isFree(known)) id = known;
    }
    if (id === undefined) {
      id = from;
      while (taken(id)) id++;
    }
    if (hello.name !== undefined && registry[hello.name] !== id) {
      const before = registry[hello.name];
      registry[hello.name] = id;
      reserved.add(id);
      if (before !== undefined && !Object.values(registry).includes(before)) reserved.delete(before);
      try {
        writeIds(this.#files.ids, registry);
      } catch (err) {
        this.dispatchEvent(new CustomEvent("error", { detail: err }));
      }
    }
    return id;
  }

  /**
   * The host writes who is in (id → pid), for whichever process hosts after
   * it: at each join and leave, before anyone else hears of it (a member's
   * join seen, then the host killed, must not lose the member its id).
   */
  #recordMembers(): void {
    if (!this.#hub) return;
    try {
      writeIds(this.#files.members, Object.fromEntries(peerView(this).map((p) => [p.id, p.pid])));
    } catch (err) {
      this.dispatchEvent(new CustomEvent("error", { detail: err }));
    }
  }

  async #dropHub(drainMs = 0): Promise<void> {
    const hub = this.#hub;
    const lock = this.#lock;
    this.#hub = undefined;
    this.#lock = undefined;
    if (hub) { for (const route of BUILTIN_ROUTES) this.handle(route, null); }
    await hub?.close({ timeout: drainMs });
    await lock?.release();
  }

  /**
   * Leaves the channel. A member hosting the hub closes it and releases the
   * lock at once, so the others elect a new hub without waiting for timeouts.
   * A join under way (the first, or one after the hub was lost) is waited
   * for first: if it took the hub, the hub is closed too.
   *
   * @example
   * ```ts
   * import { channel } from "@ipcbus/ipcbus";
   * const ch = channel("myapp");
   * await ch.ready;
   * await ch.close();
   * ```
   */
  override async close(): Promise<void> {
    this.#stopped = true;
    this.#lost?.();
    await super.close();
    // The attempt may have taken the lock and be hosting: once it has settled, there is nothing left to take.
    await this.#attempt;
    // Let frames already queued for the other members reach them.
    await this.#dropHub(500);
  }
}

/**
 * Joins channel `name`: the first process to join hosts the hub inside
 * itself, later ones connect to it, and when the hosting process dies
 * another member takes over. Members keep their ids across failovers, and
 * alerts between live members arrive exactly once, in order per sender.
 * Returns at once; calls made before `ready` are queued.
 *
 * @param name Channel name: 1-64 of `A-Z a-z 0-9 . _ -`.
 * @param options Directory, role, id, name, timeouts, queue limit.
 * @returns The channel member.
 *
 * @example
 * ```ts
 * import { channel } from "@ipcbus/ipcbus";
 * const ch = channel("myapp", { name: "worker" });
 * ch.on("job", (data, ctx) => console.log(data, "from", ctx.sender));
 * ch.broadcast("reload", {});
 * await ch.ready;
 * console.log(ch.id, ch.isHub);
 * ```
 */
export function channel(name: string, options: ChannelOptions = {}): ChannelPeer {
  const files = channelFiles(name, options.dir);
  const role = options.role ?? ChannelRole.Dual;
  if (!Object.values(ChannelRole).includes(role)) {
    throw new TypeError(`Invalid role ${JSON.stringify(role)}: expected "dual", "client" or "hub"`);
  }
  if (options.id !== undefined && (!Number.isSafeInteger(options.id) || options.id <= 0)) {
    throw new RangeError(`Invalid id ${options.id}: expected a positive integer`);
  }
  const queueLimit = options.queueLimit ?? 10_000;
  if (!Number.isSafeInteger(queueLimit) || queueLimit <= 0) {
    throw new RangeError(`Invalid queueLimit ${queueLimit}: expected a positive integer`);
  }
  // Checked now, though only read when this member hosts the hub: a bad option fails at once.
  slowConsumerTimeout(options);
  const settings: PeerSettings = {
    ...queueLimits(options),
    requestTimeout: options.requestTimeout ?? BUS_DEFAULTS.requestTimeout,
    dropOldestBroadcasts: false,
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.id === undefined ? {} : { requestedId: options.id }),
    delivery: {
      policy: (host) => new ReliableDelivery(host, queueLimit),
      queueLimit,
      graceMs: options.graceMs ?? 2000,
    },
  };
  nextMember = { name, options, files, role, settings };
  try {
    return makePeer(settings, () => new ChannelPeer());
  } finally {
    nextMember = undefined;
  }
}
