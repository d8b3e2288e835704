import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

/** Where a channel's files live. */
export interface ChannelFiles {
  dir: string;
  socket: string;
  lock: string;
  ids: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The directory, socket, lock and id-registry paths of channel `name`,
 * creating the directory `0700` if missing.
 *
 * @throws {TypeError} for a name outside `[A-Za-z0-9._-]{1,64}`.
 * @throws {Error} when the directory cannot be created, naming it.
 */
export function channelFiles(name: string, dir?: string): ChannelFiles {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(`Invalid channel name ${JSON.stringify(name)}: use 1-64 of A-Z a-z 0-9 . _ -`);
  }
  const base = dir ?? defaultDir();
  try {
    mkdirSync(base, { recursive: true, mode: 0o700 });
    if (dir === undefined && (lstatSync(base).mode & 0o077) !== 0) chmodSync(base, 0o700);
  } catch (cause) {
    throw new Error(`Cannot create channel directory ${base}: ${(cause as Error).message}`, { cause });
  }
  return {
    dir: base,
    socket: join(base, `${name}.sock`),
    lock: join(base, `${name}.lock`),
    ids: join(base, `${name}.ids.json`),
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
  const temp = `${path}.${(globalThis as { process?: { pid?: number } }).process?.pid ?? 0}.tmp`;
  writeFileSync(temp, JSON.stringify(ids), { mode: 0o600 });
  renameSync(temp, path);
}
