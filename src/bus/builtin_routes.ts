import { EncodedAnswer } from "./encoded_answer.ts";
import type { Hub } from "./hub.ts";
import type { Peer } from "./peer.ts";
import { borrowingHandler } from "./responders.ts";

/** The built-in routes every hub serves, and the patterns to remove them. */
export const BUILTIN_ROUTES = ["/ipcbus/echo", "/ipcbus/delay", "/ipcbus/stats"] as const;

/** Serves `/ipcbus/echo`, `/ipcbus/delay` and `/ipcbus/stats` (of `hub`) from `peer`. */
export function addBuiltinRoutes(peer: Peer, hub: Hub): void {
  // The payload's own bytes go back, so the echo is byte-identical whatever CBOR the requester wrote. They are
  // copied into the answer before the handler's call returns, so it borrows them where they were read.
  peer.handle("/ipcbus/echo", borrowingHandler(({ payload }) => new EncodedAnswer(payload)));
  peer.handle("/ipcbus/delay", async ({ data }) => {
    const delay = (data as { delay?: unknown })?.delay;
    if (typeof delay !== "number" || !(delay >= 0) || delay > 600_000) {
      throw new RangeError(`Invalid delay: expected { delay: ms } with 0 <= ms <= 600000, got ${JSON.stringify(data)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    return { delay };
  });
  peer.handle("/ipcbus/stats", () => hub.stats());
}
