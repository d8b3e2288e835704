import { Assertion, compileRegExpProgram, Op, type RegExpProgram } from "./regexp_program.ts";

/**
 * A regular expression tested in time linear in its input: at most
 * (input length + 1) × (program size) steps, where the engine's own RegExp
 * backtracks and can take time exponential in the input (`/^(.*)*x$/`).
 * The hub runs every peer's RegExp routes against other peers' requests, so
 * that is the only kind of RegExp it may run.
 *
 * It simulates all the paths through the pattern's automaton at once (Pike's
 * VM), one input character at a time; only `test` is offered, since routing
 * needs no captures. Patterns it cannot run are refused when it is built
 * (see `regexp_program.ts`).
 */
export class LinearRegExp {
  readonly #p: RegExpProgram;

  /**
   * @throws {SyntaxError} for an invalid pattern.
   * @throws {TypeError} for a pattern that needs backtracking (backreferences,
   * lookarounds).
   * @throws {RangeError} for a pattern that expands beyond `MAX_REGEXP_INSTRUCTIONS`.
   */
  constructor(source: string, flags: string) {
    this.#p = compileRegExpProgram(source, flags);
  }

  /** Instructions the pattern compiled to: a bound on the steps per input character. */
  get size(): number {
    return this.#p.op.length;
  }

  /** Whether the pattern matches somewhere in `input`, as `RegExp.prototype.test` would answer. */
  test(input: string): boolean {
    return run(this.#p, this.#p.unicode ? Array.from(input) : input);
  }
}

// Scratch space shared by all patterns: a test runs to its end without yielding, so one at a time.
let marks = new Int32Array(0);
let lists = [new Int32Array(0), new Int32Array(0)];
let stack = new Int32Array(0);
let added = 0;
let generation = 0;

function run(p: RegExpProgram, chars: string | readonly string[]): boolean {
  const size = p.op.length;
  if (marks.length < size) {
    marks = new Int32Array(size);
    lists = [new Int32Array(size), new Int32Array(size)];
    stack = new Int32Array(2 * size + 1);
  }
  if (generation > 0x3fff_ffff - chars.length - 1) {
    marks.fill(0);
    generation = 0;
  }
  generation++;
  added = 0;
  if (addThreads(p, chars, lists[0], 0, 0)) return true;
  for (let at = 0; at < chars.length; at++) {
    const threads = lists[at & 1];
    const following = lists[(at + 1) & 1];
    const count = added;
    const c = chars[at];
    generation++;
    added = 0;
    for (let i = 0; i < count; i++) {
      const pc = threads[i];
      if (p.tests[pc]!(c) && addThreads(p, chars, following, pc + 1, at + 1)) return true;
    }
    if (p.anchored) {
      if (added === 0) return false;
    } else if (addThreads(p, chars, following, 0, at + 1)) return true;
  }
  return false;
}

/**
 * Adds to `list` every `Char` instruction reachable from `pc` without
 * reading a character, at input position `at`; returns true when `Match` is.
 */
function addThreads(
  p: RegExpProgram,
  chars: string | readonly string[],
  list: Int32Array,
  pc: number,
  at: number,
): boolean {
  let top = 0;
  stack[top++] = pc;
  while (top > 0) {
    const i = stack[--top];
    if (marks[i] === generation) continue;
    marks[i] = generation;
    switch (p.op[i]) {
      case Op.Char:
        list[added++] = i;
        break;
      case Op.Match:
        return true;
      case Op.Jump:
        stack[top++] = p.x[i];
        break;
      case Op.Split:
        stack[top++] = p.y[i];
        stack[top++] = p.x[i];
        break;
      case Op.Assert:
        if (holds(p, chars, p.x[i], at)) stack[top++] = i + 1;
    }
  }
  return false;
}

function holds(p: RegExpProgram, chars: string | readonly string[], kind: number, at: number): boolean {
  const before = at > 0 ? chars[at - 1] : undefined;
  const after = at < chars.length ? chars[at] : undefined;
  switch (kind) {
    case Assertion.LineStart:
      return before === undefined || (p.multiline && isLineTerminator(before));
    case Assertion.LineEnd:
      return after === undefined || (p.multiline && isLineTerminator(after));
    default: {
      const boundary = (before !== undefined && p.isWordChar(before)) !== (after !== undefined && p.isWordChar(after));
      return boundary === (kind === Assertion.WordBoundary);
    }
  }
}

function isLineTerminator(c: string): boolean {
  return c === "\n" || c === "\r" || c === "\u2028" || c === "\u2029";
}
