import { checkMaxFrameBytes } from "../codec/frame_parser.ts";
import { positiveInteger } from "../util/positive_integer.ts";
import { BUS_DEFAULTS } from "./hub_settings.ts";

/** Limits on a queue of frames waiting for one slow peer. */
export interface QueueOptions {
  /**
   * Frames queued for one connection, at most.
   *
   * @default {16384}
   */
  maxQueueMessages?: number;
  /**
   * Bytes queued for one connection, at most.
   *
   * @default {4194304}
   */
  maxQueueBytes?: number;
  /**
   * Largest frame body accepted or sent.
   *
   * @default {67108864}
   */
  maxFrameBytes?: number;
}

/** Checks and fills in queue and frame limits. */
export function queueLimits(
  options: QueueOptions,
): { maxQueueMessages: number; maxQueueBytes: number; maxFrameBytes: number } {
  return {
    maxQueueMessages: positiveInteger("maxQueueMessages", options.maxQueueMessages ?? BUS_DEFAULTS.maxQueueMessages),
    maxQueueBytes: positiveInteger("maxQueueBytes", options.maxQueueBytes ?? BUS_DEFAULTS.maxQueueBytes),
    maxFrameBytes: checkMaxFrameBytes(options.maxFrameBytes ?? BUS_DEFAULTS.maxFrameBytes),
  };
}

/** Checks an `auth` option. */
export function authToken(auth: { token: string }): string {
  if (typeof auth?.token !== "string" || auth.token.length === 0) {
    throw new TypeError("Invalid auth option: expected { token: non-empty string }");
  }
  return auth.token;
}
