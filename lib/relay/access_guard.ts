/**
 * Access-code checks with a lockout: after `maxFailures` wrong codes from one IP within the
 * lockout period, that IP is refused (even with the right code) until the period ends.
 */
import { SecretMatcher } from "./secret_matcher.ts";
import { RelayError } from "./errors.ts";

export class AccessGuard {
  #code: SecretMatcher;
  #maxFailures: number;
  #lockoutMs: number;
  #failures = new Map<string, { count: number; firstMs: number; lockedUntilMs: number }>();

  constructor(code: string, maxFailures: number, lockoutSeconds: number) {
    this.#code = new SecretMatcher(code);
    this.#maxFailures = maxFailures;
    this.#lockoutMs = lockoutSeconds * 1000;
  }

  /** Throws 429 `locked_out` or 401 `bad_access_code`; returns when `code` is right. */
  check(ip: string, code: string, nowMs = Date.now()): void {
    const entry = this.#failures.get(ip);
    if (entry && entry.lockedUntilMs > nowMs) {
      throw new RelayError(
        429,
        "locked_out",
        "Too many wrong access codes from your address; try again later",
        { retryAfterSeconds: (entry.lockedUntilMs - nowMs) / 1000 },
      );
    }
    if (this.#code.matches(code)) return;
    this.#recordFailure(ip, nowMs);
    throw new RelayError(401, "bad_access_code", "The access code is not right");
  }

  #recordFailure(ip: string, nowMs: number): void {
    let entry = this.#failures.get(ip);
    if (!entry || nowMs - entry.firstMs > this.#lockoutMs) {
      if (this.#failures.size > 50_000) this.#prune(nowMs);
      entry = { count: 0, firstMs: nowMs, lockedUntilMs: 0 };
      this.#failures.set(ip, entry);
    }
    entry.count++;
    if (entry.count >= this.#maxFailures) entry.lockedUntilMs = nowMs + this.#lockoutMs;
  }

  #prune(nowMs: number): void {
    for (const [ip, entry] of this.#failures) {
      if (entry.lockedUntilMs <= nowMs && nowMs - entry.firstMs > this.#lockoutMs) {
        this.#failures.delete(ip);
      }
    }
  }
}
