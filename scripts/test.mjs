// Runs the whole suite under Deno and under Bun and totals the results.
// Usage: node scripts/test.mjs [test files or dirs...]
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const bin = (name) => `${root}node_modules/.bin/${name}`;
const targets = process.argv.slice(2);
const files = targets.length > 0 ? targets : ["tests/"];

function run(label, command, args, parse) {
  return new Promise((resolve) => {
    console.log(`\n=== ${label}: ${command} ${args.join(" ")}`);
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const tee = (stream, sink) =>
      stream.on("data", (chunk) => {
        output += chunk;
        sink.write(chunk);
      });
    tee(child.stdout, process.stdout);
    tee(child.stderr, process.stderr);
    child.on("close", (code) => {
      // deno-lint-ignore no-control-regex
      const counts = parse(output.replace(/\x1b\[[0-9;]*m/g, ""));
      if (!counts) {
        console.log(`${label}: no summary found (exit ${code}); counted as 1 failure`);
        resolve({ passed: 0, failed: 1 });
      } else {
        resolve(code === 0 || counts.failed > 0 ? counts : { ...counts, failed: counts.failed + 1 });
      }
    });
  });
}

const deno = await run(
  "deno",
  bin("deno"),
  ["test", "-A", "--no-prompt", ...files],
  (out) => {
    const m = out.match(/(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/);
    return m && { passed: Number(m[1]), failed: Number(m[2]) };
  },
);
const bun = await run(
  "bun",
  bin("bun"),
  ["test", "--timeout", "120000", ...files.map((f) => (f.startsWith("./") || f.startsWith("/") ? f : `./${f}`))],
  (out) => {
    const p = out.match(/^\s*(\d+) pass$/m);
    const f = out.match(/^\s*(\d+) fail$/m);
    return p && { passed: Number(p[1]), failed: f ? Number(f[1]) : 0 };
  },
);
console.log(`\ndeno: ${deno.passed} passed, ${deno.failed} failed; bun: ${bun.passed} passed, ${bun.failed} failed`);
const passed = deno.passed + bun.passed;
const failed = deno.failed + bun.failed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
