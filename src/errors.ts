/**
 * Every error ipcbus raises on purpose. Callers catch a subclass, or test
 * {@linkcode IpcError.code}, which is stable across releases and is what travels
 * over the wire.
 *
 * @module
 */

/**
 * Stable machine-readable codes carried by every {@linkcode IpcError}.
 *
 * @example Switching on a code
 * ```ts
 * import { ErrorCode, IpcError } from "@ipcbus/ipcbus";
 * const err: unknown = new IpcError("x", { code: ErrorCode.Timeout });
 * if (err instanceof IpcError && err.code === ErrorCode.Timeout) {
 *   // retry
 * }
 * ```
 */
export const ErrorCode = {
  Unknown: "ipc_error",
  UnsupportedRuntime: "unsupported_runtime",
  Connect: "connect_failed",
  AddressInUse: "address_in_use",
  FrameTooLarge: "frame_too_large",
  Protocol: "protocol_error",
  Timeout: "timeout",
  NoResponder: "no_handler_found",
  NoSuchPeer: "no_such_peer",
  Remote: "remote_error",
  Closed: "closed",
  QueueFull: "queue_full",
  PeerLeft: "peer_left",
  Auth: "auth_failed",
  HubExists: "hub_exists",
  /** A live peer already uses the name a joining peer asked for. */
  NameTaken: "name_taken",
  /** A live peer already holds the id a joining peer asked for. */
  IdTaken: "id_taken",
  /** The hub's socket file was deleted; the hub bound a new one. */
  SocketLost: "socket_lost",
  /** Deno refused an operation for lack of a permission flag. */
  PermissionDenied: "permission_denied",
  /** Data that cannot travel: a function, a symbol, a cycle. */
  InvalidData: "invalid_data",
  /** The hub disconnected a peer whose queue stayed full for `slowConsumer.timeout`: its pending requests fail with it. */
  SlowConsumer: "slow_consumer",
  /** The hub's process has no file descriptor left (`EMFILE`): it serves its peers but cannot accept new ones. */
  TooManyOpenFiles: "too_many_open_files",
} as const;

/** One of the values of {@linkcode ErrorCode}. */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/** Options accepted by every {@linkcode IpcError} constructor. */
export interface IpcErrorOptions {
  /** The stable code; each subclass sets its own. */
  code?: ErrorCode;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * Base class of every error ipcbus throws or rejects with.
 *
 * @example Catching any ipcbus error
 * ```ts
 * import { IpcError } from "@ipcbus/ipcbus";
 * try {
 *   throw new IpcError("Something failed");
 * } catch (err) {
 *   if (err instanceof IpcError) console.log(err.code); // "ipc_error"
 * }
 * ```
 */
export class IpcError extends Error {
  /**
   * Stable machine-readable code, one of {@linkcode ErrorCode}: comparing it
   * with a string that is not a documented code does not compile.
   */
  readonly code: ErrorCode;

  /**
   * Makes the error.
   *
   * @param message What failed, and the value that made it fail.
   * @param options The code and cause.
   */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    // Our own classes set their wire name as a literal (a minifier renames classes); subclasses users write keep theirs.
    this.name = new.target === IpcError ? "IpcError" : new.target.name;
    this.code = options.code ?? ErrorCode.Unknown;
  }
}

/**
 * The current JavaScript runtime is neither Deno nor Bun.
 *
 * @example
 * ```ts
 * import { UnsupportedRuntimeError } from "@ipcbus/ipcbus";
 * const err = new UnsupportedRuntimeError("ipcbus runs on Deno or Bun, not node");
 * console.log(err.code); // "unsupported_runtime"
 * ```
 */
export class UnsupportedRuntimeError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "UnsupportedRuntimeError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.UnsupportedRuntime });
  }
}

/**
 * Dialing a socket failed: the file is missing, nobody accepts on it, or the
 * connect timed out. The message names the path.
 *
 * @example
 * ```ts
 * import { ConnectError, dial } from "@ipcbus/ipcbus";
 * try {
 *   await dial("/tmp/nobody-here.sock");
 * } catch (err) {
 *   if (err instanceof ConnectError) console.log(err.message);
 * }
 * ```
 */
export class ConnectError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "ConnectError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.Connect });
  }
}

/**
 * A live server already accepts connections on the socket path.
 *
 * @example
 * ```ts
 * import { AddressInUseError } from "@ipcbus/ipcbus";
 * const err = new AddressInUseError("Cannot listen: /tmp/a.sock is served by a live process");
 * console.log(err.code); // "address_in_use"
 * ```
 */
export class AddressInUseError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "AddressInUseError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.AddressInUse });
  }
}

/**
 * A frame declared a length above `maxFrameBytes`; nothing of that size was
 * allocated.
 *
 * @example
 * ```ts
 * import { FrameTooLargeError } from "@ipcbus/ipcbus";
 * const err = new FrameTooLargeError("Cannot decode frame: declared length 70000000 exceeds maxFrameBytes 67108864");
 * console.log(err.code); // "frame_too_large"
 * ```
 */
export class FrameTooLargeError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "FrameTooLargeError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.FrameTooLarge });
  }
}

/**
 * Bytes on the wire that are not valid CBOR, or a message of the wrong shape.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "@ipcbus/ipcbus";
 * const err = new ProtocolError("Cannot decode frame: invalid CBOR");
 * console.log(err.code); // "protocol_error"
 * ```
 */
export class ProtocolError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "ProtocolError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.Protocol });
  }
}

/**
 * A request (or a connect) did not complete within its timeout.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@ipcbus/ipcbus";
 * const err = new TimeoutError("Request /slow timed out after 100 ms");
 * console.log(err.code); // "timeout"
 * ```
 */
export class TimeoutError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "TimeoutError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.Timeout });
  }
}

/**
 * No peer handles the requested route (code `no_handler_found`).
 *
 * @example
 * ```ts
 * import { NoResponderError } from "@ipcbus/ipcbus";
 * const err = new NoResponderError("No handler for route /nope");
 * console.log(err.code); // "no_handler_found"
 * ```
 */
export class NoResponderError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "NoResponderError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.NoResponder });
  }
}

/**
 * The destination of a send is not a live peer.
 *
 * @example
 * ```ts
 * import { NoSuchPeerError } from "@ipcbus/ipcbus";
 * const err = new NoSuchPeerError("No peer 42 is connected");
 * console.log(err.code); // "no_such_peer"
 * ```
 */
export class NoSuchPeerError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "NoSuchPeerError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.NoSuchPeer });
  }
}

/** Options of {@linkcode RemoteError}. */
export interface RemoteErrorOptions extends IpcErrorOptions {
  /** The `name` of the error thrown by the remote handler. */
  remoteName?: string;
  /** The `code` of the error thrown by the remote handler, if it had one. */
  remoteCode?: string;
}

/**
 * A request handler in another peer threw. `remoteName`, `message` and
 * `remoteCode` are the thrown error's.
 *
 * @example
 * ```ts
 * import { RemoteError } from "@ipcbus/ipcbus";
 * const err = new RemoteError("bad page", { remoteName: "RangeError" });
 * console.log(err.remoteName, err.message); // "RangeError" "bad page"
 * ```
 */
export class RemoteError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "RemoteError";

  /** The `name` of the error the handler threw. */
  readonly remoteName: string;
  /** The `code` of the error the handler threw, if any. */
  readonly remoteCode?: string;

  /**
   * Rebuilds the error a remote handler threw.
   *
   * @param message The remote error's message.
   * @param options The remote name and code.
   */
  constructor(message: string, options: RemoteErrorOptions = {}) {
    super(message, { code: ErrorCode.Remote, cause: options.cause });
    this.remoteName = options.remoteName ?? "Error";
    if (options.remoteCode !== undefined) this.remoteCode = options.remoteCode;
  }
}

/**
 * The peer, hub or connection is closed; pending requests reject with it.
 *
 * @example
 * ```ts
 * import { ClosedError } from "@ipcbus/ipcbus";
 * const err = new ClosedError("Peer is closed");
 * console.log(err.code); // "closed"
 * ```
 */
export class ClosedError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "ClosedError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.Closed });
  }
}

/**
 * A bounded queue is full; wait with `flush()` and retry.
 *
 * @example
 * ```ts
 * import { QueueFullError } from "@ipcbus/ipcbus";
 * const err = new QueueFullError("Outgoing queue is full: 10000 messages");
 * console.log(err.code); // "queue_full"
 * ```
 */
export class QueueFullError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "QueueFullError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.QueueFull });
  }
}

/**
 * The peer serving a request left before it answered.
 *
 * @example
 * ```ts
 * import { PeerLeftError } from "@ipcbus/ipcbus";
 * const err = new PeerLeftError("Peer 2 left before answering /render");
 * console.log(err.code); // "peer_left"
 * ```
 */
export class PeerLeftError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "PeerLeftError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.PeerLeft });
  }
}

/**
 * The hub refused the handshake: missing or wrong auth token.
 *
 * @example
 * ```ts
 * import { AuthError } from "@ipcbus/ipcbus";
 * const err = new AuthError("Hub refused the handshake: wrong token");
 * console.log(err.code); // "auth_failed"
 * ```
 */
export class AuthError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "AuthError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.Auth });
  }
}

/**
 * A channel member with `role: "hub"` found another live process hosting the
 * channel's hub.
 *
 * @example
 * ```ts
 * import { HubExistsError } from "@ipcbus/ipcbus";
 * const err = new HubExistsError("Channel app already has a live hub");
 * console.log(err.code); // "hub_exists"
 * ```
 */
export class HubExistsError extends IpcError {
  /** The class name, as it travels in error records. */
  override name = "HubExistsError";

  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.HubExists });
  }
}

/**
 * A live peer already uses the name a joining peer asked for (a channel
 * member's `name` option, or `connect`'s). Rebuilt with its class on the
 * joining side.
 *
 * @example
 * ```ts
 * import { NameTakenError } from "@ipcbus/ipcbus";
 * const err = new NameTakenError("Name worker is taken by live peer 1");
 * console.log(err.code); // "name_taken"
 * ```
 */
export class NameTakenError extends IpcError {
  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.NameTaken });
  }
}

/**
 * A live peer already holds the id a joining channel member asked for, or no
 * id is left to assign.
 *
 * @example
 * ```ts
 * import { IdTakenError } from "@ipcbus/ipcbus";
 * const err = new IdTakenError("Id 3 is held by a live peer");
 * console.log(err.code); // "id_taken"
 * ```
 */
export class IdTakenError extends IpcError {
  /** Makes the error from what failed (and the value that made it fail) and its cause. */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.IdTaken });
  }
}

/**
 * Deno refused a file or socket operation because the process lacks a
 * permission; the message names the flag to add (`--allow-net=unix:…`,
 * `--allow-read`, …). The runtime's own error is the `cause`.
 *
 * @example
 * ```ts
 * import { PermissionError } from "@ipcbus/ipcbus";
 * const err = new PermissionError("Cannot listen on /tmp/a.sock: run Deno with --allow-net=unix:/tmp/a.sock");
 * console.log(err.code); // "permission_denied"
 * ```
 */
export class PermissionError extends IpcError {
  /**
   * Makes the error.
   *
   * @param message What failed, and the flag that would allow it.
   * @param options The cause.
   */
  constructor(message: string, options: IpcErrorOptions = {}) {
    super(message, { ...options, code: ErrorCode.PermissionDenied });
  }
}

/** Options of {@linkcode DataError}. */
export interface DataErrorOptions extends IpcErrorOptions {
  /** Where the bad value sits, such as `data.items[2].fn`. */
  path?: string;
}

/**
 * Data passed to `send`, `broadcast`, `request` or a frame encoder cannot
 * be encoded: a function, a symbol, or an object that contains itself.
 * `path` says where the bad value sits.
 *
 * @example
 * ```ts
 * import { DataError } from "@ipcbus/ipcbus";
 * const err = new DataError("Cannot encode data.fn: a function", { path: "data.fn" });
 * console.log(err.code, err.path); // "invalid_data" "data.fn"
 * ```
 */
export class DataError extends IpcError {
  /** Where the bad value sits, such as `data.items[2].fn`. */
  readonly path: string;

  /**
   * Makes the error.
   *
   * @param message What failed, and where.
   * @param options The path to the bad value and the cause.
   */
  constructor(message: string, options: DataErrorOptions = {}) {
    super(message, { cause: options.cause, code: ErrorCode.InvalidData });
    this.path = options.path ?? "data";
  }
}
