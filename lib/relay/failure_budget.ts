/**
 * Wrong access codes from all clients together, over a sliding window. The per-client
 * lockout stops one guesser; this stops many: a holder of an IPv6 /48 has 65,536 /64
 * client keys, each with its own lockout budget, so past a global budget every code
 * check is slowed (see `AccessGuard`), whoever sends it.
 */

/** The window is kept as this many buckets, so old failures age out smoothly. */
const BUCKETS = 15;
/** The first slowed check waits this long; the wait doubles as failures go on. */
export const BASE_DELAY_MS = 250;
/** The longest wait per check. */
export const MAX_DELAY_MS = 10_000;

export class FailureBudget {
  #budget: number;
  #bucketMs: number;
  /** Failures per bucket number (`floor(now / bucketMs)`). */
  #buckets = new Map<number, number>();

  /** `budget` wrong codes per `windowMs` are free; past that, checks are slowed. */
  constructor(budget: number, windowMs: number) {
    this.#budget = budget;
    this.#bucketMs = Math.max(1, Math.ceil(windowMs / BUCKETS));
  }

  /** Counts one wrong code. */
  record(nowMs = Date.now()): void {
    const bucket = Math.floor(nowMs / this.#bucketMs);
    this.#buckets.set(bucket, (this.#buckets.get(bucket) ?? 0) + 1);
    for (const old of this.#buckets.keys()) {
      if (old <= bucket - BUCKETS) this.#buckets.delete(old);
    }
  }

  /** Wrong codes within the window. */
  failures(nowMs = Date.now()): number {
    const oldest = Math.floor(nowMs / this.#bucketMs) - BUCKETS;
    let sum = 0;
    for (const [bucket, count] of this.#buckets) if (bucket > oldest) sum += count;
    return sum;
  }

  /**
   * How long every code check waits now: 0 within the budget; past it 250 ms, doubling with
   * every further tenth of the budget, up to 10 s.
   */
  delayMs(nowMs = Date.now()): number {
    const excess = this.failures(nowMs) - this.#budget;
    if (excess <= 0) return 0;
    const step = Math.max(1, Math.ceil(this.#budget / 10));
    const doublings = Math.min(16, Math.floor((excess - 1) / step));
    return Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** doublings);
  }
}
