/**
 * Options of `connect()`'s `reconnect`: how a peer whose hub went away tries
 * to join it again. The names follow nats.js (`maxReconnectAttempts`,
 * `reconnectTimeWait`) without their prefix, since they sit under `reconnect`.
 */
export interface ReconnectOptions {
  /**
   * Attempts after each loss before giving up (`closed` then resolves with
   * the last attempt's error); `Infinity` tries forever. nats.js:
   * `maxReconnectAttempts`.
   *
   * @default {10}
   */
  maxAttempts?: number;
  /**
   * Milliseconds before the first attempt; each failed attempt doubles the
   * wait, up to `maxDelay`. nats.js: `reconnectTimeWait` (fixed there).
   *
   * @default {100}
   */
  delay?: number;
  /**
   * The longest wait between two attempts, in ms.
   *
   * @default {2000}
   */
  maxDelay?: number;
}

/** The defaults of {@linkcode ReconnectOptions}. */
export const RECONNECT_DEFAULTS = { maxAttempts: 10, delay: 100, maxDelay: 2000 } as const;

/** Reconnect settings, checked, with the defaults filled in. */
export class ReconnectPolicy {
  /** Attempts after each loss before giving up. */
  readonly maxAttempts: number;
  /** Milliseconds before the first attempt. */
  readonly delay: number;
  /** The longest wait between attempts, in ms. */
  readonly maxDelay: number;

  /**
   * Reads `connect()`'s `reconnect` option: `true` or an object enables
   * reconnecting, `false` or absent leaves it off.
   *
   * @throws {TypeError} for an option that is neither a boolean nor an object.
   * @throws {RangeError} for a negative or non-numeric setting.
   */
  static from(option: boolean | ReconnectOptions | undefined): ReconnectPolicy | undefined {
    if (option === undefined || option === false) return undefined;
    if (option === true) return new ReconnectPolicy({});
    if (option === null || typeof option !== "object") {
      throw new TypeError(`Invalid reconnect option: expected a boolean or an object, got ${typeof option}`);
    }
    return new ReconnectPolicy(option);
  }

  private constructor(options: ReconnectOptions) {
    this.maxAttempts = setting(options, "maxAttempts", 1);
    this.delay = setting(options, "delay", 0);
    this.maxDelay = Math.max(this.delay, setting(options, "maxDelay", 0));
  }

  /** Milliseconds to wait before attempt `attempt` (1, 2, …): `delay`, doubled per attempt, capped. */
  delayBefore(attempt: number): number {
    return Math.min(this.maxDelay, this.delay * 2 ** Math.min(attempt - 1, 30));
  }

  /**
   * Calls `attempt` until it succeeds, waiting {@linkcode delayBefore} before
   * each call, at most `maxAttempts` times. Rejects with the last error, at
   * once with an error `isFatal` accepts, or with the signal's reason when it
   * aborts (waits are cut short).
   */
  async run<T>(
    attempt: (n: number) => Promise<T>,
    options: { signal: AbortSignal; isFatal(err: unknown): boolean },
  ): Promise<T> {
    const { signal, isFatal } = options;
    for (let n = 1;; n++) {
      await pause(this.delayBefore(n), signal);
      try {
        return await attempt(n);
      } catch (err) {
        signal.throwIfAborted();
        if (n >= this.maxAttempts || isFatal(err)) throw err;
      }
    }
  }
}

function setting(options: ReconnectOptions, key: keyof ReconnectOptions, min: number): number {
  const value = options[key] ?? RECONNECT_DEFAULTS[key];
  if (typeof value !== "number" || Number.isNaN(value) || value < min) {
    throw new RangeError(`Invalid reconnect.${key}: expected a number of at least ${min}, got ${String(value)}`);
  }
  return value;
}

/** Waits `ms`, or less when `signal` aborts (then rejects with its reason). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", stop);
    };
    const stop = () => {
      done();
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal.addEventListener("abort", stop, { once: true });
  });
}
