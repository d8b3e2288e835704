// The linear-time matcher behind RegExp routes: it must answer exactly as the
// engine's RegExp does, refuse what it cannot run, and never backtrack.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LinearRegExp } from "../src/bus/linear_regexp.ts";
import { MAX_REGEXP_INSTRUCTIONS } from "../src/bus/regexp_program.ts";

/** A small deterministic generator (a linear congruential one), so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x80000000;
  };
}

// deno-fmt-ignore
const ATOMS = [
  "a", "b", "A", "/", "-", ".", "\\d", "\\w", "\\W", "\\s", "[ab]", "[^a]", "[a-c]", "[\\]a]", "[]", "[^]", "\\/",
  "\\n", "😀", "[😀b]", "\\u0061", "\\x62", "\\u{1F600}", "{", "}", "]", "\\p{L}", "\\-", "\\0", "\\cJ",
  "\\uD83D\\uDE00",
];
const QUANTIFIERS = ["*", "+", "?", "{2}", "{0,2}", "{1,}", "*?", "{,2}", "+?", "{1,3}?"];
const FLAGS = ["", "i", "m", "s", "u", "iu", "mu", "im", "ims", "g", "y", "su"];
const ALPHABET = [
  "a",
  "b",
  "A",
  "/",
  "-",
  "x",
  "\n",
  "\r",
  "\u2028",
  "😀",
  "\uD83D",
  " ",
  "1",
  "{",
  "}",
  "]",
  "ſ",
  "K",
  "\0",
];

function pattern(next: () => number, depth = 0): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)];
  const r = next();
  if (depth > 3 || r < 0.35) return pick(ATOMS);
  if (r < 0.45) return pick(["^", "$", "\\b", "\\B"]);
  if (r < 0.6) return pattern(next, depth + 1) + pattern(next, depth + 1) + pattern(next, depth + 1);
  if (r < 0.7) return `(${pattern(next, depth + 1)}|${pattern(next, depth + 1)})`;
  if (r < 0.8) return `(?:${pattern(next, depth + 1)})${pick(QUANTIFIERS)}`;
  if (r < 0.85) return `(?<g${depth}>${pattern(next, depth + 1)})`;
  return pattern(next, depth + 1) + pattern(next, depth + 1);
}

test("LinearRegExp.test answers as RegExp.prototype.test for random patterns, flags and inputs", () => {
  const next = random(20261207);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)];
  let compared = 0;
  let matched = 0;
  const deadline = Date.now() + 20_000;
  for (let i = 0; i < 3_000 && Date.now() < deadline; i++) {
    const source = pattern(next);
    const flags = pick(FLAGS);
    let engine: RegExp;
    try {
      // Routing ignores flags g and y (a sticky test would match only at the start).
      engine = new RegExp(source, flags.replace(/[gy]/g, ""));
    } catch {
      continue; // not a pattern in this mode (say, "{" or "\\-" with flag u): the engine refuses it, as would ipcbus
    }
    const linear = new LinearRegExp(source, flags);
    for (let k = 0; k < 8; k++) {
      const input = Array.from({ length: Math.floor(next() * 9) }, () => pick(ALPHABET)).join("");
      const expected = engine.test(input);
      assert.equal(linear.test(input), expected, `/${source}/${flags} on ${JSON.stringify(input)}`);
      compared++;
      if (expected) matched++;
    }
  }
  assert.ok(compared > 10_000, `compared ${compared} inputs`);
  // Both answers must be common, or the comparison says little.
  assert.ok(matched > compared / 5 && matched < (compared * 4) / 5, `${matched} of ${compared} matched`);
});

test("LinearRegExp answers patterns that make the engine backtrack exponentially, on long inputs", () => {
  // Each of these takes the engine's RegExp time exponential (or of high degree) in the input's length.
  const cases: Array<[string, string, boolean]> = [
    ["^(.*)*x$", "/jobs/process-image-1234".repeat(40), false],
    ["^(.*)*x$", `${"/jobs/process-image-1234".repeat(40)}x`, true],
    ["(a|a)*b", "a".repeat(5_000), false],
    ["^(a+)+$", `${"a".repeat(5_000)}!`, false],
    ["\\d*\\d*\\d*x", "1".repeat(5_000), false],
    ["^(\\w+\\s?)*$", `${"word ".repeat(1_000)}!`, false],
  ];
  for (const [source, input, expected] of cases) {
    assert.equal(new LinearRegExp(source, "").test(input), expected, `/${source}/ on ${input.length} characters`);
  }
});

test("LinearRegExp refuses backreferences, lookarounds, modifiers and flag v with a TypeError that says which", () => {
  const refused: Array<[string, string, RegExp]> = [
    ["(a)\\1", "", /backreferences/],
    ["(?<n>a)\\k<n>", "", /backreferences/],
    ["a(?=b)", "", /lookahead/],
    ["a(?!b)", "", /lookahead/],
    ["(?<=a)b", "", /lookbehind/],
    ["(?<!a)b", "", /lookbehind/],
    ["[a]", "v", /flag v/],
    ["\\01", "", /octal/],
    [`${"(?:".repeat(101)}a${")".repeat(101)}`, "", /nested over 100 deep/],
  ];
  for (const [source, flags, why] of refused) {
    assert.throws(
      () => new LinearRegExp(source, flags),
      (err) => err instanceof TypeError && why.test(err.message) && err.message.includes(source.slice(0, 80)),
      `/${source}/${flags}`,
    );
  }
});

test("LinearRegExp runs groups nested 100 deep", () => {
  const deep = new LinearRegExp(`^${"(?:a|".repeat(100)}b${")".repeat(100)}$`, "");
  assert.deepEqual([deep.test("a"), deep.test("b"), deep.test("ab"), deep.test("")], [true, true, false, false]);
});

test("LinearRegExp refuses a pattern whose repetitions expand too far with a RangeError, and an invalid one with a SyntaxError", () => {
  assert.equal(new LinearRegExp("a{1000}", "").size, 1001);
  assert.throws(
    () => new LinearRegExp("(?:a{1000}){1000}", ""),
    (err) => err instanceof RangeError && err.message.includes(`over ${MAX_REGEXP_INSTRUCTIONS}`),
  );
  assert.throws(() => new LinearRegExp("a{99999999999}", ""), RangeError);
  // A count written with many leading zeros is still a count, not a literal "{".
  const padded = new LinearRegExp(`^a{${"0".repeat(60)}2}$`, "");
  assert.deepEqual([padded.test("aa"), padded.test("a{2}")], [true, false]);
  assert.throws(() => new LinearRegExp("(", ""), SyntaxError);
});

test("LinearRegExp ignores flags g and y: a test does not depend on the one before", () => {
  const re = new LinearRegExp("^/a", "gy");
  assert.deepEqual([re.test("/a"), re.test("/a"), re.test("/b")], [true, true, false]);
});
