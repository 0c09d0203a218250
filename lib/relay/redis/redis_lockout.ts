/**
 * `AccessGuard`'s per-client-key lockout across relays: wrong codes from a key are counted in
 * a window that starts at its first failure, and at `maxFailures` the key is locked out for
 * the lockout period, whichever relay the guesses went to. Every failure is also counted in
 * this relay's memory (`MemoryLockout`), which answers while Redis is unavailable: fail open
 * to a per-relay lockout, as the rate limits and the failure budget do. Refusing every code
 * check with 503 instead would turn away everyone for the outage, while a guesser gains at
 * most `maxFailures` guesses per relay per lockout period from it.
 */
import { MemoryLockout } from "../memory_limits.ts";
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
  readonly #local: MemoryLockout;

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
    this.#local = new MemoryLockout(limits);
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
      if (error instanceof StoreUnavailableError) return await this.#local.lockedForMs(key);
      throw error;
    }
  }

  async recordFailure(key: string): Promise<number> {
    const local = await this.#local.recordFailure(key);
    try {
      return await this.#redis.eval<number>(RECORD, this.#keys(key), [
        String(this.#lockoutMs),
        String(this.#maxFailures),
        String(this.#lockoutMs),
      ]);
    } catch (error) {
      if (error instanceof StoreUnavailableError) return local;
      throw error;
    }
  }
}
