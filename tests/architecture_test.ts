// The layering rules of ARCHITECTURE.md, read off the sources: a change that breaks one fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const src = fileURLToPath(new URL("../src/", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = `${dir}${entry}`;
    if (statSync(path).isDirectory()) return sources(`${path}/`);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** Every relative import of `file`, resolved to a path under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specifiers = [...text.matchAll(/(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/g)].map((m) => m[1]);
  const dynamic = [...text.matchAll(/import\(\s*"(\.[^"]+)"\s*\)/g)].map((m) => m[1]);
  return [...specifiers, ...dynamic].map((spec) => fileURLToPath(new URL(spec, `file://${file}`)));
}

const all = sources(src);
const under = (dir: string) => all.filter((f) => f.startsWith(`${src}${dir}/`));
const RUNTIME_ADAPTERS = ["transport/deno.ts", "transport/bun.ts", "transport/listen.ts"].map((f) => `${src}${f}`);

test("the source tree has the layers ARCHITECTURE.md names", () => {
  for (const dir of ["util", "transport", "codec", "bus", "socket", "channel", "cli"]) {
    assert.ok(under(dir).length > 0, `src/${dir}/ has no files`);
  }
});

test("no file in src/bus/ imports from src/channel/ or a runtime adapter", () => {
  const bad = under("bus").flatMap((file) =>
    importsOf(file)
      .filter((target) => target.startsWith(`${src}channel/`) || RUNTIME_ADAPTERS.includes(target))
      .map((target) => `${file.slice(src.length)} → ${target.slice(src.length)}`)
  );
  assert.deepEqual(bad, []);
});

test("no file in src/transport/ imports from src/codec/", () => {
  const bad = under("transport").flatMap((file) =>
    importsOf(file)
      .filter((target) => target.startsWith(`${src}codec/`))
      .map((target) => `${file.slice(src.length)} → ${target.slice(src.length)}`)
  );
  assert.deepEqual(bad, []);
});

test("only src/transport/ names the Deno or Bun globals", () => {
  const bad = all.filter((file) =>
    !file.startsWith(`${src}transport/`) &&
    /\b(?:Deno|Bun)\.[a-z]/.test(readFileSync(file, "utf8").replace(/\/\/.*|\/\*[\s\S]*?\*\//g, ""))
  );
  assert.deepEqual(bad.map((f) => f.slice(src.length)), []);
});

test("no file under src/ has more than 500 lines", () => {
  const long = all
    .map((file) => ({ file: file.slice(src.length), lines: readFileSync(file, "utf8").split("\n").length - 1 }))
    .filter(({ lines }) => lines > 500);
  assert.deepEqual(long, []);
});

/**
 * The source files ARCHITECTURE.md names, as patterns: `frame_{en,de}coder_stream.ts`
 * and `file_lock*.ts` stand for several files; a name without a folder is its row's.
 */
function documentedFiles(): RegExp[] {
  const doc = readFileSync(fileURLToPath(new URL("../ARCHITECTURE.md", import.meta.url)), "utf8");
  return [...doc.matchAll(/`([\w/*{},.]+\.ts)`/g)].map(([, name]) => {
    const pattern = name.replace(/^src\//, "").replace(/\./g, "\\.").replace(/\*/g, "[^/]*").replace(
      /\{([^}]*)\}/g,
      (_, alternatives: string) => `(?:${alternatives.split(",").join("|")})`,
    );
    return new RegExp(`(?:^|/)${pattern}$`);
  });
}

test("ARCHITECTURE.md names every file under src/", () => {
  const documented = documentedFiles();
  const missing = all.map((file) => file.slice(src.length)).filter((file) => !documented.some((p) => p.test(file)));
  assert.deepEqual(missing, []);
});
