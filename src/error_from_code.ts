/**
 * Error records come back as error classes: a `{ code, message }` received
 * from the wire is rebuilt here, the only place that maps codes to classes.
 *
 * @module
 */
import {
  AddressInUseError,
  AuthError,
  ClosedError,
  ConnectError,
  DataError,
  ErrorCode,
  FrameTooLargeError,
  HubExistsError,
  IdTakenError,
  IpcError,
  NameTakenError,
  NoResponderError,
  NoSuchPeerError,
  PeerLeftError,
  PermissionError,
  ProtocolError,
  QueueFullError,
  TimeoutError,
  UnsupportedRuntimeError,
} from "./errors.ts";

const byCode: Record<string, new (message: string) => IpcError> = {
  [ErrorCode.Timeout]: TimeoutError,
  [ErrorCode.NoResponder]: NoResponderError,
  [ErrorCode.NoSuchPeer]: NoSuchPeerError,
  [ErrorCode.Closed]: ClosedError,
  [ErrorCode.QueueFull]: QueueFullError,
  [ErrorCode.PeerLeft]: PeerLeftError,
  [ErrorCode.Auth]: AuthError,
  [ErrorCode.Protocol]: ProtocolError,
  [ErrorCode.FrameTooLarge]: FrameTooLargeError,
  [ErrorCode.NameTaken]: NameTakenError,
  [ErrorCode.IdTaken]: IdTakenError,
  [ErrorCode.HubExists]: HubExistsError,
  [ErrorCode.Connect]: ConnectError,
  [ErrorCode.AddressInUse]: AddressInUseError,
  [ErrorCode.PermissionDenied]: PermissionError,
  [ErrorCode.InvalidData]: DataError,
  [ErrorCode.UnsupportedRuntime]: UnsupportedRuntimeError,
};

const knownCodes: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/**
 * Rebuilds an ipcbus error received as a `{ code, message }` record, keeping
 * its class when the code is one of ours. A code this version does not know
 * (from a newer hub, or a client in another language) becomes `ipc_error`,
 * with the code kept in the message.
 */
export function errorFromCode(code: string, message: string): IpcError {
  const ErrorClass = byCode[code];
  if (ErrorClass) return new ErrorClass(message);
  if (knownCodes.has(code)) return new IpcError(message, { code: code as ErrorCode });
  return new IpcError(`${message} (code ${code})`);
}
