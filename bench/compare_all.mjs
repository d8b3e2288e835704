// `deno task bench:compare`: runs bench/compare.ts on Deno, then on Bun, one
// after the other so they do not share the two cores. Arguments (--quick)
// are passed on. Exits non-zero if either run fails.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const bin = (name) => `${root}node_modules/.bin/${name}`;
const args = process.argv.slice(2);
const runs = [
  [bin("deno"), ["run", "-A", "bench/compare.ts", ...args]],
  [bin("bun"), ["bench/compare.ts", ...args]],
];
let failed = 0;
for (const [command, argv] of runs) {
  const { status, error } = spawnSync(command, argv, { cwd: root, stdio: "inherit" });
  if (error) console.error(error.message);
  if (status !== 0) failed++;
  console.log("");
}
process.exit(failed === 0 ? 0 : 1);
