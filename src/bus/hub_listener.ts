import { ErrorCode, IpcError } from "../errors.ts";
import type { Connection, Listener } from "../transport/connection.ts";
import { canOpenFile, isOutOfFiles } from "../transport/out_of_files.ts";
import type { SocketWatch } from "./hub_settings.ts";

/** First wait before accepting again after the process ran out of file descriptors; it doubles up to the next. */
const ACCEPT_RETRY_MS = 50;
const MAX_ACCEPT_RETRY_MS = 1000;

/** What a {@linkcode HubListener} hands to its hub. */
export interface HubListenerHost {
  /** Serves a connection just accepted. */
  accept(conn: Connection): void;
  /** Reports an error (an `error` event of the hub); `counted` ones go into `stats().errors`. */
  error(err: unknown, counted: boolean): void;
  /** How many peers are connected, for the message of running out of descriptors. */
  peers(): number;
}

/**
 * The hub's listening side: accepts connections, binds a new socket file
 * when the old one is deleted (the socket watch), and keeps accepting when
 * the process runs out of file descriptors. Out of descriptors, accepting
 * fails (Deno) or stalls (Bun, which retries in silence) while the peers
 * connected are served as ever: it reports that once as `too_many_open_files`,
 * tries again less and less often, and, for Bun, probes on each tick of the
 * socket watch.
 */
export class HubListener {
  readonly #host: HubListenerHost;
  #listener: Listener | undefined;
  #watchTimer: ReturnType<typeof setInterval> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retry: (() => void) | undefined;
  #closing = false;
  /** Whether the process was found out of file descriptors and has not accepted since. */
  #outOfFiles = false;
  /** Times the socket file was found deleted and bound anew. */
  rebinds = 0;

  constructor(listener: Listener | undefined, host: HubListenerHost) {
    this.#listener = listener;
    this.#host = host;
  }

  /** The socket path, if the hub listens on one. */
  get path(): string | undefined {
    return this.#listener?.path;
  }

  /** Starts accepting, and watching the socket file if `watch` is given. */
  start(watch: SocketWatch | undefined): void {
    if (this.#listener) void this.#acceptLoop(this.#listener);
    if (watch) this.#watchTimer = setInterval(() => void this.#checkSocket(watch), watch.intervalMs);
  }

  /** Stops accepting and removes the socket file. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#watchTimer);
    clearTimeout(this.#retryTimer);
    this.#retry?.();
    await this.#listener?.close();
  }

  /**
   * A deleted socket file leaves the hub listening on an inode nobody can
   * reach: notice it, bind a new file, and say so through an `error` event.
   */
  async #checkSocket(watch: SocketWatch): Promise<void> {
    if (this.#outOfFiles) this.#outOfFiles = !canOpenFile();
    else if (!canOpenFile()) this.#onOutOfFiles(undefined);
    if (this.#closing || watch.isBound()) return;
    try {
      // Close the old listener first: the new file may get the deleted one's
      // inode number, and the old listener removes a file with its inode.
      await this.#listener?.close();
      const listener = await watch.relisten();
      if (this.#closing) return void await listener.close();
      this.#listener = listener;
      this.rebinds++;
      void this.#acceptLoop(listener);
      this.#host.error(
        new IpcError(`Socket file ${listener.path} was removed under the hub; bound a new one`, {
          code: ErrorCode.SocketLost,
        }),
        false,
      );
    } catch (err) {
      this.#host.error(err, true);
    }
  }

  async #acceptLoop(listener: Listener): Promise<void> {
    let retryMs = ACCEPT_RETRY_MS;
    while (!this.#closing) {
      try {
        for await (const conn of listener) {
          this.#outOfFiles = false;
          retryMs = ACCEPT_RETRY_MS;
          this.#host.accept(conn);
        }
        return;
      } catch (err) {
        if (this.#closing) return;
        if (!isOutOfFiles(err)) return this.#host.error(err, true);
        this.#onOutOfFiles(err);
        await new Promise<void>((resolve) => {
          this.#retry = resolve;
          this.#retryTimer = setTimeout(resolve, retryMs);
        });
        retryMs = Math.min(retryMs * 2, MAX_ACCEPT_RETRY_MS);
      }
    }
  }

  /** Reports, once until the hub accepts again, that the process has no file descriptor left for new peers. */
  #onOutOfFiles(cause: unknown): void {
    if (this.#outOfFiles) return;
    this.#outOfFiles = true;
    this.#host.error(
      new IpcError(
        `Cannot accept new peers: the hub's process has no file descriptor left (EMFILE); the ${this.#host.peers()} peers connected are served, new ones wait until descriptors are freed`,
        { code: ErrorCode.TooManyOpenFiles, ...(cause === undefined ? {} : { cause }) },
      ),
      true,
    );
  }
}
