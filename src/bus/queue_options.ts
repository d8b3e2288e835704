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

/** The hub's policy for peers that do not read: options of `serve()` and of channels. */
export interface SlowConsumerOptions {
  /**
   * As NATS does with slow consumers: a peer whose queue at the hub has no
   * room and took nothing for `timeout` ms is disconnected, with reason
   * `slow_consumer` (its `disconnect` event, `peerleave` for the others).
   * Until then what does not fit is refused for it alone.
   *
   * @default {{ timeout: 10000 }}
   */
  slowConsumer?: { timeout: number };
}

/** Longest delay a timer takes (2³¹ − 1 ms); a longer one fires at once. */
const MAX_TIMER_MS = 0x7fffffff;

/**
 * Checks a `slowConsumer` option.
 *
 * @returns Its timeout in ms, the default when absent.
 * @throws {TypeError} when it is not an object; {RangeError} for a timeout that is not an integer from 1 to 2³¹ − 1.
 */
export function slowConsumerTimeout(options: SlowConsumerOptions): number {
  const slow = options.slowConsumer;
  if (slow !== undefined && (slow === null || typeof slow !== "object")) {
    throw new TypeError(`Invalid option slowConsumer: expected { timeout: ms }, got ${JSON.stringify(slow)}`);
  }
  const timeout = slow?.timeout ?? BUS_DEFAULTS.slowConsumerTimeout;
  if (!Number.isSafeInteger(timeout) || timeout <= 0 || timeout > MAX_TIMER_MS) {
    throw new RangeError(
      `Invalid option slowConsumer.timeout: expected an integer from 1 to ${MAX_TIMER_MS} ms, got ${timeout}`,
    );
  }
  return timeout;
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
