/**
 * The limits that protect the service, built once for the relay's engine (issue 14): on Deno
 * KV (one relay per store) this relay's memory holds them; on Redis (`REDIS_URL`, several
 * relays may share it) Redis counts them for all relays together. Routes see one async
 * interface per limit either way (`global_limits.ts`).
 *
 * While Redis is down every limit fails open to this relay's own count, never to "no limit"
 * and never to a crash: each Redis limit keeps an in-memory twin that counts beside it and
 * answers for the outage (rate limits, the failure budget, the lockout), and sockets still
 * meet `SocketSlots`. Refusing with 503 instead would make the limits themselves an outage of
 * what needs no store (a session token, a socket that resumes from the page's own state);
 * what does need the store is refused with 503 `store_unavailable` by the store anyway.
 */
import type { RelayConfig } from "./config.ts";
import { FailureBudget } from "./failure_budget.ts";
import {
  memoryFailureBudget,
  MemoryLockout,
  memoryRateLimit,
  UNCOUNTED_SOCKETS,
} from "./memory_limits.ts";
import { RateLimiter } from "./rate_limiter.ts";
import type {
  GlobalFailureBudget,
  GlobalLockout,
  GlobalRateLimit,
  GlobalSocketCount,
} from "./redis/global_limits.ts";
import type { RedisConnection } from "./redis/redis_connection.ts";
import { RedisFailureBudget } from "./redis/redis_failure_budget.ts";
import { RedisLockout } from "./redis/redis_lockout.ts";
import { RedisRateLimiter } from "./redis/redis_rate_limiter.ts";
import { RedisSocketCount } from "./redis/redis_socket_count.ts";

/** The relay's limits, one async interface each. */
export interface RelayLimits {
  /** Requests per client key and window (`RATE_LIMIT_MAX_PER_IP`). */
  ip: GlobalRateLimit;
  /** Messages per chat and window (`RATE_LIMIT_MAX_PER_CHAT`). */
  chat: GlobalRateLimit;
  /** Lockout per client key after wrong access codes (`ACCESS_CODE_MAX_FAILURES`). */
  lockout: GlobalLockout;
  /** Wrong access codes of all clients (`ACCESS_CODE_GLOBAL_FAILURES`). */
  failureBudget: GlobalFailureBudget;
  /**
   * Visitor sockets per client key on all relays (`MAX_SOCKETS_PER_IP`), taken beside this
   * relay's `SocketSlots`; counts nothing on Deno KV, where `SocketSlots` is the whole count.
   */
  sockets: GlobalSocketCount;
  /** Stops background work (renewing socket leases); the relay is shutting down. */
  close(): void;
}

/** The config `relayLimits()` reads. */
export type RelayLimitsConfig = Pick<
  RelayConfig,
  | "rateLimitWindowMs"
  | "rateLimitMaxPerIp"
  | "rateLimitMaxPerChat"
  | "accessCodeMaxFailures"
  | "accessCodeLockoutSeconds"
  | "accessCodeGlobalFailures"
  | "maxSocketsPerIp"
>;

/** Options of `relayLimits()`. */
export interface RelayLimitsOptions {
  /** Names this relay's socket leases in Redis. @default a random id per start */
  relayId?: string;
  /** Put before every Redis key, as the store's. @default "terrarium:" */
  prefix?: string;
}

/** The limits for `config`: in Redis when `redis` is given, else in this relay's memory. */
export function relayLimits(
  config: RelayLimitsConfig,
  redis: RedisConnection | null,
  options: RelayLimitsOptions = {},
): RelayLimits {
  const windowMs = config.rateLimitWindowMs;
  const lockoutLimits = {
    maxFailures: config.accessCodeMaxFailures,
    lockoutSeconds: config.accessCodeLockoutSeconds,
  };
  const budgetWindowMs = config.accessCodeLockoutSeconds * 1000;
  if (redis === null) {
    return {
      ip: memoryRateLimit(new RateLimiter(windowMs, config.rateLimitMaxPerIp)),
      chat: memoryRateLimit(new RateLimiter(windowMs, config.rateLimitMaxPerChat)),
      lockout: new MemoryLockout(lockoutLimits),
      failureBudget: memoryFailureBudget(
        new FailureBudget(config.accessCodeGlobalFailures, budgetWindowMs),
      ),
      sockets: UNCOUNTED_SOCKETS,
      close: () => {},
    };
  }
  const prefix = { prefix: options.prefix ?? "terrarium:" };
  const sockets = new RedisSocketCount(redis, {
    ...prefix,
    relayId: options.relayId ?? crypto.randomUUID(),
    max: config.maxSocketsPerIp,
  });
  return {
    ip: new RedisRateLimiter(redis, "ip", { windowMs, max: config.rateLimitMaxPerIp }, prefix),
    chat: new RedisRateLimiter(
      redis,
      "chat",
      { windowMs, max: config.rateLimitMaxPerChat },
      prefix,
    ),
    lockout: new RedisLockout(redis, lockoutLimits, prefix),
    failureBudget: new RedisFailureBudget(
      redis,
      { budget: config.accessCodeGlobalFailures, windowMs: budgetWindowMs },
      prefix,
    ),
    sockets,
    close: () => sockets.close(),
  };
}
