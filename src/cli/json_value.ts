import type { Command } from "./cli_args.ts";
import { UsageError } from "./exit_code.ts";

/**
 * Renders a value received over the bus as JSON. CBOR carries more than JSON
 * does, so: byte strings (`Uint8Array`) become base64 strings, bigints become
 * decimal strings, `Map`s become objects, `Set`s become arrays, `undefined`
 * becomes `null` and dates become ISO 8601 strings.
 *
 * @param value Any decoded value.
 * @param indent Spaces of indentation; 0 for one line.
 * @returns The JSON text.
 */
export function toJson(value: unknown, indent = 0): string {
  return JSON.stringify(value ?? null, jsonReplacer, indent);
}

function jsonReplacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return base64(value);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), v]));
  if (value instanceof Set) return [...value];
  return value;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/**
 * Parses the data argument of `send`, `broadcast` and `request`.
 *
 * @param text JSON text, from the command line or stdin.
 * @param where Where it came from, for the error message.
 * @param command The subcommand, for the usage hint.
 * @returns The value; `undefined` for empty text.
 * @throws {UsageError} when the text is not JSON.
 */
export function parseJsonData(text: string, where: string, command?: Command): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
    throw new UsageError(
      `Invalid JSON data ${JSON.stringify(shown)} from ${where}: ${(err as Error).message}`,
      command,
    );
  }
}
