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
 *
 * Both counts are async interfaces: in this relay's memory by default, in Redis for all
 * relays together when `relayLimits()` gives them (issue 14). The pacing of waiting checks
 * stays per relay: it spaces this relay's own sleeps.
 */
import { delay } from "../delay.ts";
import type { Logger } from "../log.ts";
import { RelayError } from "./errors.ts";
import { FailureBudget } from "./failure_budget.ts";
import { memoryFailureBudget, MemoryLockout } from "./memory_limits.ts";
import type { GlobalFailureBudget, GlobalLockout } from "./redis/global_limits.ts";
import { SecretMatcher } from "./secret_matcher.ts";

/** Checks that start per delay while slowed (so the wait for each stays one delay). */
const PARALLEL_PER_DELAY = 10;
/** A check that would wait longer than this is refused with `Retry-After` instead. */
const MAX_WAIT_MS = 30_000;
/** Checks of one key queued at most on this relay; more are refused with `Retry-After`. */
const MAX_QUEUED_PER_KEY = 16;

/** Options of `AccessGuard`. */
export interface AccessGuardOptions {
  /** Wrong codes from one key before it is locked out. */
  maxFailures: number;
  /** Length of a lockout, and the window both budgets count over. */
  lockoutSeconds: number;
  /** Wrong codes from all keys per window before every check is slowed. */
  globalFailures: number;
  /**
   * Where lockouts are counted (`relayLimits()`: across relays on Redis).
   * @default this relay's memory, by `maxFailures` and `lockoutSeconds`
   */
  lockout?: GlobalLockout;
  /**
   * Where wrong codes of all keys are counted (`relayLimits()`: across relays on Redis).
   * @default this relay's memory, by `globalFailures` and `lockoutSeconds`
   */
  budget?: GlobalFailureBudget;
  /** Where the once-per-period warning goes. */
  log?: Logger;
  /** Waits `ms` (injectable for tests). */
  sleep?: (ms: number) => Promise<void>;
  /** The clock (injectable for tests; also the default lockout's and budget's). */
  now?: () => number;
}

export class AccessGuard {
  #code: SecretMatcher;
  #lockoutMs: number;
  #lockout: GlobalLockout;
  #budget: GlobalFailureBudget;
  #log: Logger | undefined;
  #sleep: (ms: number) => Promise<void>;
  #now: () => number;
  /** Keys with checks in flight on this relay: the last one's end, and how many. */
  #lanes = new Map<string, { tail: Promise<void>; size: number }>();
  /** When the next slowed check may start (on this relay). */
  #nextStartMs = 0;
  #warnedAtMs = -Infinity;
  /** The delay the last check or failure saw, and when (for the `/metrics` gauge). */
  #lastDelay = { ms: 0, atMs: -Infinity };

  constructor(code: string, options: AccessGuardOptions) {
    this.#code = new SecretMatcher(code);
    this.#lockoutMs = options.lockoutSeconds * 1000;
    this.#now = options.now ?? Date.now;
    const now = this.#now;
    this.#lockout = options.lockout ?? new MemoryLockout(options, { now });
    this.#budget = options.budget ??
      memoryFailureBudget(new FailureBudget(options.globalFailures, this.#lockoutMs), now);
    this.#log = options.log;
    this.#sleep = options.sleep ?? ((ms) => delay(ms));
  }

  /**
   * How long each code check waits, as the last check or wrong code on this relay found it (a
   * gauge is read synchronously; the budget may live in Redis). 0 once a whole period passed
   * since: by then every failure it counted has aged out.
   */
  delayMs(): number {
    const { ms, atMs } = this.#lastDelay;
    return this.#now() - atMs >= this.#lockoutMs ? 0 : ms;
  }

  /** Throws 429 `locked_out`/`rate_limited`/`auth_busy` or 401 `bad_access_code`. */
  async check(key: string, code: string): Promise<void> {
    // The checks of one key run one at a time on this relay. With the counts in Redis a
    // check awaits round trips between reading the lockout and recording a failure, and a
    // burst of parallel guesses from one key would all be judged before any of them locked
    // it; in a lane, at most one guess per relay runs past the count. While slowed, a second
    // check of a key is refused rather than queued behind the first one's wait.
    let lane = this.#lanes.get(key);
    if (lane && (this.#lastDelay.ms > 0 || lane.size >= MAX_QUEUED_PER_KEY)) {
      throw new RelayError("rate_limited", "Your previous access code is still being checked.", {
        retryAfterSeconds: Math.max(1, this.#lastDelay.ms / 1000),
      });
    }
    if (!lane) this.#lanes.set(key, lane = { tail: Promise.resolve(), size: 0 });
    const turn = lane.tail.then(() => this.#judge(key, code));
    lane.tail = turn.catch(() => {});
    lane.size++;
    try {
      await turn;
    } finally {
      if (--lane.size === 0 && this.#lanes.get(key) === lane) this.#lanes.delete(key);
    }
  }

  async #judge(key: string, code: string): Promise<void> {
    await this.#refuseLocked(key);
    const delay = await this.#delay();
    if (delay > 0) {
      await this.#wait(delay);
      await this.#refuseLocked(key);
    }
    if (this.#code.matches(code)) return;
    await this.#recordFailure(key);
    throw new RelayError("bad_access_code", "The access code is not right.");
  }

  async #delay(): Promise<number> {
    const ms = await this.#budget.delayMs();
    this.#lastDelay = { ms, atMs: this.#now() };
    return ms;
  }

  async #refuseLocked(key: string): Promise<void> {
    const lockedMs = await this.#lockout.lockedForMs(key);
    if (lockedMs > 0) {
      throw new RelayError("locked_out", "Too many wrong access codes came from your network.", {
        retryAfterSeconds: lockedMs / 1000,
      });
    }
  }

  /** Waits for a start slot plus one delay. */
  async #wait(delay: number): Promise<void> {
    const nowMs = this.#now();
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
    await this.#sleep(waitMs);
  }

  async #recordFailure(key: string): Promise<void> {
    await this.#budget.record();
    await this.#lockout.recordFailure(key);
    const delay = await this.#delay();
    const nowMs = this.#now();
    if (delay > 0 && nowMs - this.#warnedAtMs >= this.#lockoutMs) {
      this.#warnedAtMs = nowMs;
      this.#log?.warn("many wrong access codes: every access-code check is slowed", {
        failures: await this.#budget.failures(),
        periodSeconds: this.#lockoutMs / 1000,
        delayMs: delay,
      });
    }
  }
}
