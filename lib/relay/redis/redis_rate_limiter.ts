/**
 * `RateLimiter`'s fixed windows, counted in Redis so every relay shares them: one script
 * INCRs the key's counter and starts its window (PEXPIRE) on the first hit. While Redis is
 * unavailable the limiter falls back to this relay's in-memory `RateLimiter` (fail open to
 * per-relay limits): a limiter must not turn a Redis outage into refusals of its own, and
 * writes are refused with 503 then anyway.
 */
import { RateLimiter } from "../rate_limiter.ts";
import type { GlobalRateLimit } from "./global_limits.ts";
import type { RedisConnection } from "./redis_connection.ts";
import { StoreUnavailableError } from "./store_unavailable_error.ts";

/** KEYS: counter. ARGV: window ms. Returns the count and the ms left in the window. */
const HIT = `
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
`;

/** A fixed-window limit per key shared by all relays on one Redis. */
export class RedisRateLimiter implements GlobalRateLimit {
  readonly #redis: RedisConnection;
  readonly #name: string;
  readonly #windowMs: number;
  readonly #max: number;
  readonly #prefix: string;
  readonly #fallback: RateLimiter;

  /** `name` tells limiters apart (`ip`, `chat`); `windowMs` and `max` as in `RateLimiter`. */
  constructor(
    redis: RedisConnection,
    name: string,
    limits: { windowMs: number; max: number },
    options: { prefix?: string } = {},
  ) {
    this.#redis = redis;
    this.#name = name;
    this.#windowMs = limits.windowMs;
    this.#max = limits.max;
    this.#prefix = options.prefix ?? "terrarium:";
    this.#fallback = new RateLimiter(limits.windowMs, limits.max);
  }

  async hit(key: string): Promise<number> {
    let reply: [number, number];
    try {
      // One slot per counter: the key is its own hash tag.
      reply = await this.#redis.eval<[number, number]>(HIT, [
        `${this.#prefix}rate:${this.#name}:{${key}}`,
      ], [String(this.#windowMs)]);
    } catch (error) {
      if (error instanceof StoreUnavailableError) return this.#fallback.hit(key);
      throw error;
    }
    const [count, leftMs] = reply;
    if (count <= this.#max) return 0;
    return Math.max(1, Math.ceil(leftMs / 1000));
  }
}
