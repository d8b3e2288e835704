/**
 * Alert name patterns in the NATS style. A name is split into tokens at
 * `.`; in a pattern, the token `*` matches exactly one token and `>`, only
 * as the last token, matches one or more. The bare name `"*"` is the
 * catch-all of earlier releases and matches every alert, like `">"`.
 *
 * @module
 */

/** How one pattern token matches; the order is the precedence, most specific first. */
const LITERAL = 2;
const ONE = 1;
const REST = 0;

/** A compiled alert name pattern. */
export interface AlertPattern {
  /** The pattern as given. */
  readonly text: string;
  /**
   * Sorts patterns by precedence: compared as strings, a greater rank is
   * more specific. One character per token: literal `2`, `*` `1`, `>` `0`.
   */
  readonly rank: string;
  /** Whether alert `name` matches. */
  matches(name: string): boolean;
}

/**
 * Compiles `text` when it is a pattern, that is when one of its `.`-separated
 * tokens is `*` or `>` (or it is `"*"`); returns undefined for an exact name.
 *
 * @throws {TypeError} when `>` is not the last token.
 */
export function compileAlertPattern(text: string): AlertPattern | undefined {
  if (text === "*" || text === ">") return { text, rank: String(REST), matches: () => true };
  if (!text.includes("*") && !text.includes(">")) return undefined;
  const tokens = text.split(".");
  const kinds = tokens.map((t) => t === "*" ? ONE : t === ">" ? REST : LITERAL);
  if (!kinds.includes(ONE) && !kinds.includes(REST)) return undefined;
  const rest = kinds.indexOf(REST);
  if (rest !== -1 && rest !== kinds.length - 1) {
    throw new TypeError(`Invalid alert pattern ${JSON.stringify(text)}: ">" may only be the last token`);
  }
  const fixed = rest === -1 ? tokens.length : rest;
  return {
    text,
    rank: kinds.join(""),
    matches(name: string): boolean {
      // Walks the name once without splitting it: names are matched per alert.
      let at = 0;
      for (let i = 0; i < fixed; i++) {
        if (at > name.length) return false;
        let end = name.indexOf(".", at);
        if (end === -1) end = name.length;
        if (kinds[i] === LITERAL) {
          const token = tokens[i];
          if (end - at !== token.length || !name.startsWith(token, at)) return false;
        } else if (end === at) return false; // a wildcard matches a non-empty token only
        at = end + 1;
      }
      // Without ">" every token is used up; with it at least one non-empty token is left.
      return rest === -1 ? at === name.length + 1 : at < name.length;
    },
  };
}
