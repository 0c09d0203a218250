/**
 * The limits of one relay, in memory, behind the async interfaces of `global_limits.ts` so the
 * routes treat both engines alike (`relay_limits.ts` picks one): on Deno KV there is one relay
 * per store, and these are the whole truth; on Redis the `Redis*` classes count for all relays
 * and fall back to these while Redis is away. Each answer is a resolved promise: one microtask
 * on the hot path, no I/O.
 */
import type { FailureBudget } from "./failure_budget.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import type {
  GlobalFailureBudget,
  GlobalLockout,
  GlobalRateLimit,
  GlobalSocketCount,
  SocketLease,
} from "./redis/global_limits.ts";

/** `limiter` as a `GlobalRateLimit`. */
export function memoryRateLimit(limiter: RateLimiter): GlobalRateLimit {
  return { hit: (key) => Promise.resolve(limiter.hit(key)) };
}

/** `budget` as a `GlobalFailureBudget`; `now` is its clock. */
export function memoryFailureBudget(
  budget: FailureBudget,
  now: () => number = Date.now,
): GlobalFailureBudget {
  return {
    record: () => Promise.resolve(budget.record(now())),
    failures: () => Promise.resolve(budget.failures(now())),
    delayMs: () => Promise.resolve(budget.delayMs(now())),
  };
}

const NO_LEASE: SocketLease = { release: () => Promise.resolve() };

/**
 * Counts no socket and refuses none: on one relay `SocketSlots` (held by the `VisitorHub`)
 * already caps sockets per client key, so a second count would only repeat it.
 */
export const UNCOUNTED_SOCKETS: GlobalSocketCount = {
  acquire: () => Promise.resolve(NO_LEASE),
  count: () => Promise.resolve(0),
};

/** Keys with failures remembered at most (pruned first, then the oldest dropped). */
const MAX_KEYS = 50_000;

interface KeyFailures {
  count: number;
  firstMs: number;
  lockedUntilMs: number;
}

/** Per-client-key lockouts kept by this relay alone. */
export class MemoryLockout implements GlobalLockout {
  readonly #maxFailures: number;
  readonly #lockoutMs: number;
  readonly #now: () => number;
  readonly #failures = new Map<string, KeyFailures>();

  /** `maxFailures` wrong codes within `lockoutSeconds` lock a key for `lockoutSeconds`. */
  constructor(
    limits: { maxFailures: number; lockoutSeconds: number },
    options: { now?: () => number } = {},
  ) {
    this.#maxFailures = limits.maxFailures;
    this.#lockoutMs = limits.lockoutSeconds * 1000;
    this.#now = options.now ?? Date.now;
  }

  lockedForMs(key: string): Promise<number> {
    const entry = this.#failures.get(key);
    return Promise.resolve(entry ? Math.max(0, entry.lockedUntilMs - this.#now()) : 0);
  }

  recordFailure(key: string): Promise<number> {
    const nowMs = this.#now();
    let entry = this.#failures.get(key);
    if (!entry || nowMs - entry.firstMs > this.#lockoutMs) {
      if (this.#failures.size >= MAX_KEYS) this.#prune(nowMs);
      entry = { count: 0, firstMs: nowMs, lockedUntilMs: 0 };
      this.#failures.delete(key);
      this.#failures.set(key, entry);
    }
    entry.count++;
    if (entry.count >= this.#maxFailures) entry.lockedUntilMs = nowMs + this.#lockoutMs;
    return Promise.resolve(Math.max(0, entry.lockedUntilMs - nowMs));
  }

  #prune(nowMs: number): void {
    for (const [key, entry] of this.#failures) {
      if (entry.lockedUntilMs <= nowMs && nowMs - entry.firstMs > this.#lockoutMs) {
        this.#failures.delete(key);
      }
    }
    // Still full: forget the oldest (the global budget still counts their failures).
    for (const key of this.#failures.keys()) {
      if (this.#failures.size < MAX_KEYS) break;
      this.#failures.delete(key);
    }
  }
}
