/**
 * `FailureBudget` across relays: wrong access codes from all clients counted in Redis, in
 * the same fifteen buckets over the window, so old failures age out smoothly. The bucket
 * keys share one hash tag (one Cluster slot), so a count is one MGET. While Redis is
 * unavailable the relay's own `FailureBudget` answers (it records every failure too).
 */
import { BASE_DELAY_MS, FailureBudget, MAX_DELAY_MS } from "../failure_budget.ts";
import type { GlobalFailureBudget } from "./global_limits.ts";
import type { RedisConnection } from "./redis_connection.ts";
import { StoreUnavailableError } from "./store_unavailable_error.ts";

/** As in `failure_budget.ts`: the window is kept as this many buckets. */
const BUCKETS = 15;

/**
 * `FailureBudget.delayMs()`'s curve for a failure count: 0 within the budget; past it 250 ms,
 * doubling with every further tenth of the budget, up to 10 s (`delay_curve_test` pins it to
 * the in-memory class).
 */
export function delayForFailures(failures: number, budget: number): number {
  const excess = failures - budget;
  if (excess <= 0) return 0;
  const step = Math.max(1, Math.ceil(budget / 10));
  const doublings = Math.min(16, Math.floor((excess - 1) / step));
  return Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** doublings);
}

/** The global wrong-code budget of all relays on one Redis. */
export class RedisFailureBudget implements GlobalFailureBudget {
  readonly #redis: RedisConnection;
  readonly #budget: number;
  readonly #bucketMs: number;
  readonly #prefix: string;
  readonly #local: FailureBudget;
  readonly #now: () => number;

  /** `budget` wrong codes per `windowMs` are free, as in `FailureBudget`. */
  constructor(
    redis: RedisConnection,
    limits: { budget: number; windowMs: number },
    options: { prefix?: string; now?: () => number } = {},
  ) {
    this.#redis = redis;
    this.#budget = limits.budget;
    this.#bucketMs = Math.max(1, Math.ceil(limits.windowMs / BUCKETS));
    this.#prefix = options.prefix ?? "terrarium:";
    this.#local = new FailureBudget(limits.budget, limits.windowMs);
    this.#now = options.now ?? Date.now;
  }

  #key(bucket: number): string {
    return `${this.#prefix}{auth_failures}:${bucket}`;
  }

  async record(): Promise<void> {
    const now = this.#now();
    this.#local.record(now);
    const bucket = Math.floor(now / this.#bucketMs);
    try {
      await this.#redis.eval(
        "redis.call('INCR', KEYS[1]) redis.call('PEXPIRE', KEYS[1], ARGV[1]) return 1",
        [this.#key(bucket)],
        // Kept as long as a bucket can still count, and a bucket more.
        [String(this.#bucketMs * (BUCKETS + 1))],
      );
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
    }
  }

  async failures(): Promise<number> {
    const now = this.#now();
    const newest = Math.floor(now / this.#bucketMs);
    const keys = Array.from({ length: BUCKETS }, (_, i) => this.#key(newest - i));
    try {
      const counts = await this.#redis.command<(string | null)[]>(["MGET", ...keys]);
      return counts.reduce((sum, count) => sum + Number(count ?? 0), 0);
    } catch (error) {
      if (error instanceof StoreUnavailableError) return this.#local.failures(now);
      throw error;
    }
  }

  async delayMs(): Promise<number> {
    return delayForFailures(await this.failures(), this.#budget);
  }
}
