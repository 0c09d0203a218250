/**
 * One relay of several does the rounds that must run once (issue 14): the lease sweep hands an
 * expired turn to the queue again and announces it, and two relays doing it would announce it
 * twice. The leader holds a key with its name and a time to live, renewed on every round; when
 * it dies, another relay takes over within `ttlMs`.
 */
import type { RedisConnection } from "./redis_connection.ts";

/** KEYS: the leader key. ARGV: relay id, ttl ms. 1 while `relay id` leads. */
const LEAD = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** Which relay does the once-only rounds. */
export class RedisLeader {
  readonly #redis: RedisConnection;
  readonly #key: string;
  readonly #relayId: string;
  readonly #ttlMs: number;

  constructor(
    redis: RedisConnection,
    relayId: string,
    options: { prefix?: string; ttlMs?: number } = {},
  ) {
    this.#redis = redis;
    this.#key = `${options.prefix ?? "terrarium:"}leader`;
    this.#relayId = relayId;
    this.#ttlMs = options.ttlMs ?? 3_000;
  }

  /** Whether this relay leads now (taking or renewing the lead when it can). */
  async leads(): Promise<boolean> {
    return await this.#redis.eval<number>(LEAD, [this.#key], [
      this.#relayId,
      String(this.#ttlMs),
    ]) === 1;
  }
}
