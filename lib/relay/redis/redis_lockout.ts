/**
 * `AccessGuard`'s per-client-key lockout across relays: wrong codes from a key are counted in
 * a window that starts at its first failure, and at `maxFailures` the key is locked out for
 * the lockout period, whichever relay the guesses went to. While Redis is unavailable nobody
 * is locked out by it (the relay's own `AccessGuard` still is).
 */
import type { GlobalLockout } from "./global_limits.ts";
import type { RedisConnection } from "./redis_connection.ts";
import { StoreUnavailableError } from "./store_unavailable_error.ts";

/**
 * KEYS: failures counter, lock. ARGV: window ms, max failures, lockout ms.
 * Returns the lockout's ms left (0: not locked).
 */
const RECORD = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if count >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  return tonumber(ARGV[3])
end
return 0
`;

/** Per-client-key lockouts shared by all relays on one Redis. */
export class RedisLockout implements GlobalLockout {
  readonly #redis: RedisConnection;
  readonly #maxFailures: number;
  readonly #lockoutMs: number;
  readonly #prefix: string;

  /** As `AccessGuardOptions`: `maxFailures` wrong codes within `lockoutSeconds` lock a key. */
  constructor(
    redis: RedisConnection,
    limits: { maxFailures: number; lockoutSeconds: number },
    options: { prefix?: string } = {},
  ) {
    this.#redis = redis;
    this.#maxFailures = limits.maxFailures;
    this.#lockoutMs = limits.lockoutSeconds * 1000;
    this.#prefix = options.prefix ?? "terrarium:";
  }

  #keys(key: string): [string, string] {
    const base = `${this.#prefix}lockout:{${key}}`;
    return [`${base}:failures`, `${base}:locked`];
  }

  async lockedForMs(key: string): Promise<number> {
    try {
      const left = await this.#redis.command<number>(["PTTL", this.#keys(key)[1]]);
      return left > 0 ? left : 0;
    } catch (error) {
      if (error instanceof StoreUnavailableError) return 0;
      throw error;
    }
  }

  async recordFailure(key: string): Promise<number> {
    try {
      return await this.#redis.eval<number>(RECORD, this.#keys(key), [
        String(this.#lockoutMs),
        String(this.#maxFailures),
        String(this.#lockoutMs),
      ]);
    } catch (error) {
      if (error instanceof StoreUnavailableError) return 0;
      throw error;
    }
  }
}
