import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { asPermissionError } from "../transport/permission_error.ts";
import { randomHex } from "../util/random_hex.ts";
import { processId } from "../transport/runtime.ts";

/** Where a channel's files live. */
export interface ChannelFiles {
  dir: string;
  socket: string;
  lock: string;
  ids: string;
  /** The last host's members, id → pid: held for them when a fresh process takes over. */
  members: string;
  token: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The directory, socket, lock and id-registry paths of channel `name`,
 * creating the directory `0700` if missing.
 *
 * @throws {TypeError} for a name outside `[A-Za-z0-9._-]{1,64}`.
 * @throws {PermissionError} when Deno lacks the flag to find or create the directory.
 * @throws {Error} when the directory cannot be created, naming it.
 */
export function channelFiles(name: string, dir?: string): ChannelFiles {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(`Invalid channel name ${JSON.stringify(name)}: use 1-64 of A-Z a-z 0-9 . _ -`);
  }
  let base;
  try {
    base = dir ?? defaultDir();
  } catch (cause) {
    throw asPermissionError(cause, `Cannot find the directory of channel ${name}`) ?? cause;
  }
  try {
    mkdirSync(base, { recursive: true, mode: 0o700 });
    if (dir === undefined && (lstatSync(base).mode & 0o077) !== 0) chmodSync(base, 0o700);
  } catch (cause) {
    throw asPermissionError(cause, `Cannot create channel directory ${base}`) ??
      new Error(`Cannot create channel directory ${base}: ${(cause as Error).message}`, { cause });
  }
  return {
    dir: base,
    socket: join(base, `${name}.sock`),
    lock: join(base, `${name}.lock`),
    ids: join(base, `${name}.ids.json`),
    members: join(base, `${name}.members.json`),
    token: join(base, `${name}.token`),
  };
}

function defaultDir(): string {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, "ipcbus");
  return join(tmpdir(), `ipcbus-${userInfo().uid}`);
}

/** Reads the name → id registry; an unreadable one counts as empty. */
export function readIds(path: string): Record<string, number> {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8"));
    return parsed !== null && typeof parsed === "object" ? parsed : {};
  } catch {
    return {};
  }
}

/** Writes the registry atomically (write then rename), so a crash never leaves half a file. */
export function writeIds(path: string, ids: Record<string, number>): void {
  const temp = `${path}.${processId}.tmp`;
  writeFileSync(temp, JSON.stringify(ids), { mode: 0o600 });
  renameSync(temp, path);
}

/** Ids in the members file (id → pid) whose process is still alive. */
export function liveMemberIds(path: string): number[] {
  const ids: number[] = [];
  for (const [id, pid] of Object.entries(readIds(path))) {
    if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid)) ids.push(Number(id));
  }
  return ids;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists, it is just not ours to signal.
    return (err as { code?: string }).code === "EPERM";
  }
}

/** The channel's auth token, or undefined while no host has written it. */
export function readToken(path: string): string | undefined {
  try {
    const token = readFileSync(path, "utf8").trim();
    return token.length > 0 ? token : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The channel's auth token, created by the first host: 32 random bytes as
 * hex, written `0600` with `wx` so two writers cannot both create it.
 *
 * @throws {Error} when an existing token file is readable by others than its owner.
 */
export function ensureToken(path: string): string {
  const existing = readToken(path);
  if (existing !== undefined) {
    if ((statSync(path).mode & 0o077) !== 0) {
      throw new Error(`Refusing channel token file ${path}: it must be readable by its owner only (chmod 600)`);
    }
    return existing;
  }
  const token = randomHex(32);
  try {
    writeFileSync(path, token, { mode: 0o600, flag: "wx" });
  } catch (cause) {
    if ((cause as { code?: string }).code !== "EEXIST") throw cause;
    const written = readToken(path);
    if (written !== undefined) return written;
    // An empty file left by a host that died between create and write: only
    // the lock holder calls this, so nobody else is writing it now.
    writeFileSync(path, token, { mode: 0o600 });
  }
  return token;
}
