/**
 * The npm package as a Bun user gets it: `npm pack` (whose `prepack` builds
 * the declaration files into `types/`), unpacked into a fresh project whose
 * tsconfig is `bun init`'s, made stricter (no `skipLibCheck`), and checked
 * with `tsc --noEmit`. The project installs the tarball, `@types/bun` and
 * `typescript` with npm as a user would (`--prefer-offline`: from npm's cache
 * when it has them, else from the registry): `@types/bun` needs a newer
 * `@types/node` than this checkout pins, which Deno's own type check uses.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, runtimeBin, tempDir } from "./_helpers.ts";

const STEP_TIMEOUT = 120_000;

/** Runs a command to completion (killed after STEP_TIMEOUT), resolving with its exit code and output. */
function run(command: string, args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: STEP_TIMEOUT, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** The versions this checkout runs: Bun's types for its Bun, and the TypeScript that builds `types/`. */
const BUN_TYPES = "@types/bun@1.4.5";
const TYPESCRIPT = "typescript@7.0.2";

const userCode = (socket: string) => `
import { connect, ErrorCode, IpcError, NameTakenError, serve, type PeerInfo } from "ipcbus";

const path = ${JSON.stringify(socket)};
const hub = await serve({ path });
hub.peer.handle("/time", () => Date.now());
const peer = await connect({ path, name: "a" });
const infos: PeerInfo[] = await peer.peers();
const first = infos[0]; // noUncheckedIndexedAccess: PeerInfo | undefined
console.log(first?.id, await peer.request("/time"));
try {
  throw new NameTakenError("Name a is taken by live peer 1");
} catch (err) {
  if (err instanceof NameTakenError) console.log(err.code);
  if (err instanceof IpcError && err.code === ErrorCode.Timeout) console.log("retry");
  // @ts-expect-error: the code is typed as the union of the documented codes
  if (err instanceof IpcError && err.code === "no_such_pear") console.log("never");
}
await peer.close();
await hub.close();
`;

const TSCONFIG = {
  compilerOptions: {
    lib: ["ESNext"],
    target: "ESNext",
    module: "Preserve",
    moduleDetection: "force",
    moduleResolution: "bundler",
    allowImportingTsExtensions: true,
    verbatimModuleSyntax: true,
    noEmit: true,
    strict: true,
    skipLibCheck: false,
    noFallthroughCasesInSwitch: true,
    noUncheckedIndexedAccess: true,
    noImplicitOverride: true,
    types: ["bun"],
  },
  include: ["index.ts"],
};

test(
  "a strict Bun project that imports the packed package type-checks with zero errors and runs",
  { timeout: 4 * STEP_TIMEOUT },
  async () => {
    const dir = tempDir("ipcbus-pack-");
    try {
      const pack = await run("npm", ["pack", "--silent", "--pack-destination", dir.path], repoRoot);
      assert.equal(pack.code, 0, `npm pack failed:\n${pack.output}`);
      const tarball = readdirSync(dir.path).find((f) => f.endsWith(".tgz"));
      assert.ok(tarball, `npm pack wrote no tarball:\n${pack.output}`);

      const project = join(dir.path, "app");
      mkdirSync(project);
      writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", type: "module", private: true }));
      const install = await run(
        "npm",
        ["install", "--prefer-offline", "--no-audit", "--no-fund", join(dir.path, tarball), BUN_TYPES, TYPESCRIPT],
        project,
      );
      assert.equal(install.code, 0, `npm install failed:\n${install.output}`);
      writeFileSync(join(project, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
      writeFileSync(join(project, "index.ts"), userCode(join(dir.path, "app.sock")));

      const tsc = await run(join(project, "node_modules", "typescript", "bin", "tsc"), ["-p", "."], project);
      assert.equal(tsc.code, 0, `tsc reported errors:\n${tsc.output}`);
      assert.equal(tsc.output.trim(), "");

      const bun = await run(runtimeBin("bun"), ["index.ts"], project);
      assert.equal(bun.code, 0, `the packed package failed to run on Bun:\n${bun.output}`);
    } finally {
      dir.remove();
    }
  },
);
