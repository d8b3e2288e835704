/**
 * Compiles an ECMAScript regular expression into a program for the
 * linear-time matcher of `linear_regexp.ts`: Thompson's construction over
 * single characters, alternatives, repetitions and the assertions `^`, `$`,
 * `\b`, `\B`. What a single character matches (a literal, `.`, a class, an
 * escape such as `\d` or `\p{L}`) is left to the engine's own RegExp, one
 * character at a time, so it means exactly what it means in the pattern.
 *
 * Only what a finite automaton can do is accepted: backreferences,
 * lookarounds, modifiers and the `v` flag are refused with a `TypeError`,
 * as are groups nested over {@linkcode MAX_REGEXP_NESTING} deep, and a
 * pattern whose repetitions expand beyond
 * {@linkcode MAX_REGEXP_INSTRUCTIONS} with a `RangeError`.
 *
 * @module
 */

/** Instructions one pattern may compile to; a match costs at most this many steps per character of its input. */
export const MAX_REGEXP_INSTRUCTIONS = 2_000;

/** Groups nested deeper are refused: compiling recurses once per level. */
export const MAX_REGEXP_NESTING = 100;

/** Instruction codes of a {@linkcode RegExpProgram}. */
export const Op = { Char: 0, Split: 1, Jump: 2, Assert: 3, Match: 4 } as const;

/** Zero-width assertions, the `x` operand of an {@linkcode Op.Assert}. */
export const Assertion = { LineStart: 0, LineEnd: 1, WordBoundary: 2, NotWordBoundary: 3 } as const;

/** Whether one character (a code unit, or a code point with flag `u`) matches. */
export type CharTest = (c: string) => boolean;

/**
 * A compiled pattern. Instruction `pc` is `op[pc]` with operands `x[pc]` and
 * `y[pc]`: `Char` tests the next character with `tests[pc]` and goes on at
 * `pc + 1`; `Split` goes on at both `x` and `y`; `Jump` at `x`; `Assert`
 * at `pc + 1` where assertion `x` holds; `Match` ends a match.
 */
export interface RegExpProgram {
  readonly op: Uint8Array;
  readonly x: Int32Array;
  readonly y: Int32Array;
  readonly tests: readonly (CharTest | undefined)[];
  /** Flag `u`: the input is read by code point, else by UTF-16 code unit. */
  readonly unicode: boolean;
  /** Flag `m`: `^` and `$` also match at line terminators. */
  readonly multiline: boolean;
  /** Every match starts at the input's start (the pattern begins with `^`, without flag `m`). */
  readonly anchored: boolean;
  /** Whether a character is a word character for `\b` and `\B`, under the pattern's flags. */
  readonly isWordChar: CharTest;
}

type Node =
  | { t: "char"; test: CharTest }
  | { t: "assert"; kind: number }
  | { t: "seq"; items: Node[] }
  | { t: "alt"; options: Node[] }
  | { t: "repeat"; node: Node; min: number; max: number };

const QUANTIFIER = /\{(\d+)(,(\d*))?\}/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * Compiles `source` under `flags` (flags `g`, `y` and `d` do not change
 * whether an input matches and are ignored).
 *
 * @throws {SyntaxError} when the engine's RegExp does not accept the pattern.
 * @throws {TypeError} for a pattern the linear matcher cannot run, saying why.
 * @throws {RangeError} for a pattern over {@linkcode MAX_REGEXP_INSTRUCTIONS}.
 */
export function compileRegExpProgram(source: string, flags: string): RegExpProgram {
  new RegExp(source, flags); // the engine's syntax check; the parser below may then assume a valid pattern
  if (flags.includes("v")) unsupported(source, "flag v");
  const unicode = flags.includes("u");
  const multiline = flags.includes("m");
  const charFlags = flags.replace(/[^isu]/g, "");
  const root = new Parser(source, unicode, charFlags).parse();
  const size = sizeOf(root) + 1;
  if (size > MAX_REGEXP_INSTRUCTIONS) {
    throw new RangeError(
      `RegExp route /${clip(source)}/ is too large: ${size} instructions once its repetitions are expanded, ` +
        `over ${MAX_REGEXP_INSTRUCTIONS}`,
    );
  }
  const emitter = new Emitter(size);
  emitter.emit(root);
  emitter.push(Op.Match, 0, 0);
  const word = new RegExp("^\\w$", charFlags);
  return {
    op: emitter.op,
    x: emitter.x,
    y: emitter.y,
    tests: emitter.tests,
    unicode,
    multiline,
    anchored: !multiline && anchoredAtStart(root),
    isWordChar: (c) => word.test(c),
  };
}

function unsupported(source: string, what: string): never {
  throw new TypeError(
    `Unsupported RegExp route /${
      clip(source)
    }/: ${what} (route patterns are matched in linear time, without backtracking)`,
  );
}

function clip(source: string): string {
  return source.length > 80 ? `${source.slice(0, 80)}…` : source;
}

/** A recursive-descent parser of patterns the engine has already accepted. */
class Parser {
  #i = 0;
  #depth = 0;
  readonly #chars = new Map<string, CharTest>();

  constructor(readonly source: string, readonly unicode: boolean, readonly charFlags: string) {}

  parse(): Node {
    return this.#disjunction();
  }

  #disjunction(): Node {
    const options = [this.#alternative()];
    while (this.source[this.#i] === "|") {
      this.#i++;
      options.push(this.#alternative());
    }
    return options.length === 1 ? options[0] : { t: "alt", options };
  }

  #alternative(): Node {
    const items: Node[] = [];
    for (let c = this.source[this.#i]; c !== undefined && c !== "|" && c !== ")"; c = this.source[this.#i]) {
      items.push(this.#quantified(this.#term()));
    }
    return items.length === 1 ? items[0] : { t: "seq", items };
  }

  #term(): Node {
    const s = this.source;
    const c = s[this.#i];
    if (c === "^" || c === "$") {
      this.#i++;
      return { t: "assert", kind: c === "^" ? Assertion.LineStart : Assertion.LineEnd };
    }
    if (c === "(") return this.#group();
    if (c === "\\") return this.#escape();
    let end = this.#i + 1;
    if (c === "[") {
      // Without flag v a class does not nest, and the engine has checked that it is closed.
      while (s[end] !== "]") end += s[end] === "\\" ? 2 : 1;
      end++;
    } else if (this.unicode && isHighSurrogate(s, this.#i) && isLowSurrogate(s, end)) end++;
    return this.#char(end);
  }

  #group(): Node {
    const s = this.source;
    this.#i++;
    if (s[this.#i] === "?") {
      const next = s[this.#i + 1];
      const after = s[this.#i + 2];
      if (next === ":") this.#i += 2;
      else if (next === "<" && after !== "=" && after !== "!") this.#i = s.indexOf(">", this.#i) + 1;
      else if (next === "=" || next === "!") unsupported(s, "lookahead");
      else if (next === "<") unsupported(s, "lookbehind");
      else unsupported(s, "modifiers such as (?i:…)");
    }
    if (++this.#depth > MAX_REGEXP_NESTING) unsupported(s, `groups nested over ${MAX_REGEXP_NESTING} deep`);
    const inner = this.#disjunction();
    this.#depth--;
    this.#i++; // ")"
    return inner;
  }

  #escape(): Node {
    const s = this.source;
    const at = this.#i;
    const c = s[at + 1];
    if (c === "b" || c === "B") {
      this.#i += 2;
      return { t: "assert", kind: c === "b" ? Assertion.WordBoundary : Assertion.NotWordBoundary };
    }
    if ((c >= "1" && c <= "9") || c === "k") unsupported(s, "backreferences");
    if (c === "0" && s[at + 2] >= "0" && s[at + 2] <= "9") unsupported(s, "octal escapes");
    let end = at + 2;
    if (c === "x" && /^[0-9a-fA-F]{2}$/.test(s.slice(at + 2, at + 4))) end = at + 4;
    else if (c === "u" && this.unicode && s[at + 2] === "{") end = s.indexOf("}", at) + 1;
    else if (c === "u" && HEX4.test(s.slice(at + 2, at + 6))) {
      end = at + 6;
      // With flag u, an escaped surrogate pair is one code point.
      const lead = parseInt(s.slice(at + 2, at + 6), 16);
      const trail = s.startsWith("\\u", end) && HEX4.test(s.slice(end + 2, end + 6))
        ? parseInt(s.slice(end + 2, end + 6), 16)
        : 0;
      if (this.unicode && lead >= 0xd800 && lead <= 0xdbff && trail >= 0xdc00 && trail <= 0xdfff) end += 6;
    } else if (c === "c") {
      if (!/^[A-Za-z]$/.test(s[at + 2] ?? "")) unsupported(s, "\\c without a control letter");
      end = at + 3;
    } else if ((c === "p" || c === "P") && this.unicode) end = s.indexOf("}", at) + 1;
    return this.#char(end);
  }

  /** The single character spanning the source from here to `end`. */
  #char(end: number): Node {
    const text = this.source.slice(this.#i, end);
    this.#i = end;
    let test = this.#chars.get(text);
    if (test === undefined) {
      if (text.length <= 2 && !this.charFlags.includes("i") && !"\\.[".includes(text[0])) {
        test = (c) => c === text;
      } else {
        const one = new RegExp(`^(?:${text})$`, this.charFlags);
        // Routes are mostly ASCII: remember the answer for each ASCII character (0: not asked yet, 1: no, 2: yes).
        const ascii = new Uint8Array(128);
        test = (c) => {
          const u = c.charCodeAt(0);
          if (c.length !== 1 || u >= 128) return one.test(c);
          if (ascii[u] === 0) ascii[u] = one.test(c) ? 2 : 1;
          return ascii[u] === 2;
        };
      }
      this.#chars.set(text, test);
    }
    return { t: "char", test };
  }

  #quantified(node: Node): Node {
    const s = this.source;
    const c = s[this.#i];
    let min: number;
    let max: number;
    if (c === "*" || c === "+" || c === "?") {
      this.#i++;
      [min, max] = c === "*" ? [0, Infinity] : c === "+" ? [1, Infinity] : [0, 1];
    } else if (c === "{") {
      // Without flag u, a "{" that does not start a quantifier is a literal.
      QUANTIFIER.lastIndex = this.#i;
      const m = QUANTIFIER.exec(s);
      if (m === null) return node;
      this.#i += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
    } else return node;
    if (s[this.#i] === "?") this.#i++; // lazy or greedy: the same set of matches
    return { t: "repeat", node, min, max };
  }
}

function isHighSurrogate(s: string, i: number): boolean {
  const u = s.charCodeAt(i);
  return u >= 0xd800 && u <= 0xdbff;
}

function isLowSurrogate(s: string, i: number): boolean {
  const u = s.charCodeAt(i);
  return u >= 0xdc00 && u <= 0xdfff;
}

function sizeOf(n: Node): number {
  switch (n.t) {
    case "char":
    case "assert":
      return 1;
    case "seq":
      return n.items.reduce((sum, item) => sum + sizeOf(item), 0);
    case "alt":
      return n.options.reduce((sum, option) => sum + sizeOf(option), 0) + 2 * (n.options.length - 1);
    case "repeat": {
      const one = sizeOf(n.node);
      return one * n.min + (n.max === Infinity ? one + 2 : (one + 1) * (n.max - n.min));
    }
  }
}

function anchoredAtStart(n: Node): boolean {
  switch (n.t) {
    case "char":
      return false;
    case "assert":
      return n.kind === Assertion.LineStart;
    case "seq":
      return n.items.length > 0 && anchoredAtStart(n.items[0]);
    case "alt":
      return n.options.every(anchoredAtStart);
    case "repeat":
      return n.min > 0 && anchoredAtStart(n.node);
  }
}

/** Thompson's construction into preallocated arrays of the exact size. */
class Emitter {
  readonly op: Uint8Array;
  readonly x: Int32Array;
  readonly y: Int32Array;
  readonly tests: (CharTest | undefined)[];
  #pc = 0;

  constructor(size: number) {
    this.op = new Uint8Array(size);
    this.x = new Int32Array(size);
    this.y = new Int32Array(size);
    this.tests = new Array(size).fill(undefined);
  }

  push(op: number, x: number, y: number): number {
    const pc = this.#pc++;
    this.op[pc] = op;
    this.x[pc] = x;
    this.y[pc] = y;
    return pc;
  }

  emit(n: Node): void {
    switch (n.t) {
      case "char":
        this.tests[this.push(Op.Char, 0, 0)] = n.test;
        return;
      case "assert":
        this.push(Op.Assert, n.kind, 0);
        return;
      case "seq":
        for (const item of n.items) this.emit(item);
        return;
      case "alt": {
        const jumps: number[] = [];
        n.options.forEach((option, i) => {
          const last = i === n.options.length - 1;
          const split = last ? -1 : this.push(Op.Split, this.#pc + 1, 0);
          this.emit(option);
          if (!last) {
            jumps.push(this.push(Op.Jump, 0, 0));
            this.y[split] = this.#pc;
          }
        });
        for (const jump of jumps) this.x[jump] = this.#pc;
        return;
      }
      case "repeat":
        for (let i = 0; i < n.min; i++) this.emit(n.node);
        if (n.max === Infinity) {
          const loop = this.push(Op.Split, this.#pc + 1, 0);
          this.emit(n.node);
          this.push(Op.Jump, loop, 0);
          this.y[loop] = this.#pc;
          return;
        }
        {
          const splits: number[] = [];
          for (let i = n.min; i < n.max; i++) {
            splits.push(this.push(Op.Split, this.#pc + 1, 0));
            this.emit(n.node);
          }
          for (const split of splits) this.y[split] = this.#pc;
        }
    }
  }
}
