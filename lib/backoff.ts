/**
 * Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture
 * Blog, 2015): each wait is uniform in `[0, min(cap, base · 2^(attempt-1))]`, so a fleet of
 * workers that lost the relay at the same moment does not come back in lockstep.
 */

/** How a `Backoff` grows. */
export interface BackoffOptions {
  /** The ceiling of the first wait. @default 500 */
  baseMs?: number;
  /** No wait is longer than this. @default 30_000 */
  capMs?: number;
  /** A number in [0, 1); injectable so tests can pin the jitter. @default Math.random */
  random?: () => number;
}

// 2^30 · base overflows every sensible cap long before the exponent matters.
const MAX_EXPONENT = 30;

/** The longest wait before retry number `attempt` (1 for the first): base · 2^(attempt-1), capped. */
export function backoffCeiling(attempt: number, options: BackoffOptions = {}): number {
  const { baseMs = 500, capMs = 30_000 } = options;
  const exponent = Math.min(Math.max(attempt, 1) - 1, MAX_EXPONENT);
  return Math.min(capMs, baseMs * 2 ** exponent);
}

/** The full-jitter wait before retry number `attempt` (1 for the first retry). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const random = options.random ?? Math.random;
  return Math.floor(Math.min(Math.max(random(), 0), 1) * backoffCeiling(attempt, options));
}

/** A retry counter that hands out full-jitter waits and can be reset after a success. */
export class Backoff {
  #options: BackoffOptions;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#options = options;
  }

  /** Retries handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** Counts one more retry and returns how long to wait before it. */
  next(): number {
    this.#attempt = Math.min(this.#attempt + 1, MAX_EXPONENT + 1);
    return backoffDelay(this.#attempt, this.#options);
  }

  /** Starts over from the base wait (the last attempt worked). */
  reset(): void {
    this.#attempt = 0;
  }
}
