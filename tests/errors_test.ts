/**
 * The error classes as callers use them: codes typed as the documented
 * union, subclasses rebuilt from their code.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DataError,
  ErrorCode,
  IdTakenError,
  IpcError,
  NameTakenError,
  PermissionError,
  RemoteError,
  TimeoutError,
} from "../mod.ts";
import { errorFromCode } from "../src/error_from_code.ts";

test("IpcError.code is the ErrorCode union, so comparing it with a misspelt code does not compile", () => {
  const err: IpcError = new TimeoutError("Request /slow timed out after 100 ms");
  const code: ErrorCode = err.code;
  assert.equal(code, ErrorCode.Timeout);
  // @ts-expect-error "no_such_pear" is not one of the documented codes (deno test type-checks this file).
  assert.equal(err.code === "no_such_pear", false);
});

test("name_taken, id_taken, permission_denied and invalid_data are rebuilt with their classes", () => {
  assert.ok(errorFromCode("name_taken", "Name worker is taken by live peer 1") instanceof NameTakenError);
  assert.ok(errorFromCode("id_taken", "Id 3 is held by a live peer") instanceof IdTakenError);
  assert.ok(errorFromCode("permission_denied", "x") instanceof PermissionError);
  assert.ok(errorFromCode("invalid_data", "x") instanceof DataError);
});

test("a code this version does not know becomes ipc_error with the code in the message", () => {
  const err = errorFromCode("from_the_future", "Something new failed");
  assert.equal(err.constructor, IpcError);
  assert.equal(err.code, "ipc_error");
  assert.match(err.message, /Something new failed \(code from_the_future\)/);
});

test("RemoteError keeps any string the remote handler used as its code", () => {
  const err = new RemoteError("bad page", { remoteName: "RangeError", remoteCode: "E_PAGE" });
  assert.equal(err.code, "remote_error");
  assert.equal(err.remoteCode, "E_PAGE");
});
