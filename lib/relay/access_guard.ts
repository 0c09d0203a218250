/**
 * Access-code checks, keyed by client key (`clientKey()`: an IPv4 address or an IPv6 /64).
 *
 * - Lockout: after `maxFailures` wrong codes from one key within the lockout period, that
 *   key is refused (even with the right code) until the period ends. Other keys are not
 *   affected: a lockout never refuses the right code to a different client key.
 * - Global failure budget: past `globalFailures` wrong codes per period from all keys
 *   together, every check waits before it is judged (`FailureBudget.delayMs()`), and the
 *   checks start at most ten per delay, so many keys guessing in parallel are slowed as
 *   one. Every check waits, right code or not: waiting only on wrong codes would tell a
 *   guesser the answer before the wait. One waiting check per key; a wait past 30 s is
 *   refused with `Retry-After` instead of queued. The relay warns once per period.
 */
import type { Logger } from "../log.ts";
import { RelayError } from "./errors.ts";
import { FailureBudget } from "./failure_budget.ts";
import { SecretMatcher } from "./secret_matcher.ts";

/** Checks that start per delay while slowed (so the wait for each stays one delay). */
const PARALLEL_PER_DELAY = 10;
/** A check that would wait longer than this is refused with `Retry-After` instead. */
const MAX_WAIT_MS = 30_000;
/** Keys with failures remembered at most (pruned first, then the oldest dropped). */
const MAX_KEYS = 50_000;

/** Options of `AccessGuard`. */
export interface AccessGuardOptions {
  /** Wrong codes from one key before it is locked out. */
  maxFailures: number;
  /** Length of a lockout, and the window both budgets count over. */
  lockoutSeconds: number;
  /** Wrong codes from all keys per window before every check is slowed. */
  globalFailures: number;
  /** Where the once-per-period warning goes. */
  log?: Logger;
  /** Waits `ms` (injectable for tests). */
  sleep?: (ms: number) => Promise<void>;
}

interface KeyFailures {
  count: number;
  firstMs: number;
  lockedUntilMs: number;
}

export class AccessGuard {
  #code: SecretMatcher;
  #maxFailures: number;
  #lockoutMs: number;
  #budget: FailureBudget;
  #log: Logger | undefined;
  #sleep: (ms: number) => Promise<void>;
  #failures = new Map<string, KeyFailures>();
  /** Keys with a check waiting now. */
  #waiting = new Set<string>();
  /** When the next slowed check may start. */
  #nextStartMs = 0;
  #warnedAtMs = -Infinity;

  constructor(code: string, options: AccessGuardOptions) {
    this.#code = new SecretMatcher(code);
    this.#maxFailures = options.maxFailures;
    this.#lockoutMs = options.lockoutSeconds * 1000;
    this.#budget = new FailureBudget(options.globalFailures, this.#lockoutMs);
    this.#log = options.log;
    this.#sleep = options.sleep ??
      ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** How long each code check waits now (0 unless the global budget is spent). */
  delayMs(nowMs = Date.now()): number {
    return this.#budget.delayMs(nowMs);
  }

  /** Throws 429 `locked_out`/`rate_limited`/`auth_busy` or 401 `bad_access_code`. */
  async check(key: string, code: string, nowMs = Date.now()): Promise<void> {
    this.#refuseLocked(key, nowMs);
    const delay = this.#budget.delayMs(nowMs);
    if (delay > 0) {
      nowMs += await this.#wait(key, delay, nowMs);
      this.#refuseLocked(key, nowMs);
    }
    if (this.#code.matches(code)) return;
    this.#recordFailure(key, nowMs);
    throw new RelayError("bad_access_code", "The access code is not right.");
  }

  #refuseLocked(key: string, nowMs: number): void {
    const entry = this.#failures.get(key);
    if (entry && entry.lockedUntilMs > nowMs) {
      throw new RelayError("locked_out", "Too many wrong access codes came from your network.", {
        retryAfterSeconds: (entry.lockedUntilMs - nowMs) / 1000,
      });
    }
  }

  /** Waits for a start slot plus one delay; returns how long it waited. */
  async #wait(key: string, delay: number, nowMs: number): Promise<number> {
    if (this.#waiting.has(key)) {
      throw new RelayError("rate_limited", "Your previous access code is still being checked.", {
        retryAfterSeconds: delay / 1000,
      });
    }
    const startMs = Math.max(nowMs, this.#nextStartMs);
    const waitMs = startMs - nowMs + delay;
    if (waitMs > MAX_WAIT_MS) {
      throw new RelayError(
        "auth_busy",
        "The relay is slowing access-code checks because of many wrong guesses.",
        { retryAfterSeconds: waitMs / 1000 },
      );
    }
    this.#nextStartMs = startMs + delay / PARALLEL_PER_DELAY;
    this.#waiting.add(key);
    try {
      await this.#sleep(waitMs);
    } finally {
      this.#waiting.delete(key);
    }
    return waitMs;
  }

  #recordFailure(key: string, nowMs: number): void {
    this.#budget.record(nowMs);
    const delay = this.#budget.delayMs(nowMs);
    if (delay > 0 && nowMs - this.#warnedAtMs >= this.#lockoutMs) {
      this.#warnedAtMs = nowMs;
      this.#log?.warn("many wrong access codes: every access-code check is slowed", {
        failures: this.#budget.failures(nowMs),
        periodSeconds: this.#lockoutMs / 1000,
        delayMs: delay,
      });
    }
    let entry = this.#failures.get(key);
    if (!entry || nowMs - entry.firstMs > this.#lockoutMs) {
      if (this.#failures.size >= MAX_KEYS) this.#prune(nowMs);
      entry = { count: 0, firstMs: nowMs, lockedUntilMs: 0 };
      this.#failures.delete(key);
      this.#failures.set(key, entry);
    }
    entry.count++;
    if (entry.count >= this.#maxFailures) entry.lockedUntilMs = nowMs + this.#lockoutMs;
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
