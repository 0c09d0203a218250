/**
 * A circuit breaker for the model API: after `failureThreshold` failed calls in a row it
 * opens and refuses calls for `cooldownMs`, then lets one trial call through (half-open);
 * that call's success closes it, its failure opens it again.
 */

export type BreakerState = "closed" | "open" | "half-open";

export class CircuitBreaker {
  #threshold: number;
  #cooldownMs: number;
  #failures = 0;
  #openedAt = 0;
  #state: BreakerState = "closed";
  #trialInFlight = false;

  constructor(failureThreshold = 5, cooldownMs = 30_000) {
    this.#threshold = failureThreshold;
    this.#cooldownMs = cooldownMs;
  }

  /** The state now. */
  state(nowMs = Date.now()): BreakerState {
    if (this.#state === "open" && nowMs - this.#openedAt >= this.#cooldownMs) return "half-open";
    return this.#state;
  }

  /** Whether a call may go out now (a half-open breaker admits one trial at a time). */
  tryAcquire(nowMs = Date.now()): boolean {
    const state = this.state(nowMs);
    if (state === "closed") return true;
    if (state === "half-open" && !this.#trialInFlight) {
      this.#trialInFlight = true;
      return true;
    }
    return false;
  }

  /** Records a successful call. */
  success(): void {
    this.#failures = 0;
    this.#state = "closed";
    this.#trialInFlight = false;
  }

  /** Records a failed call. */
  failure(nowMs = Date.now()): void {
    this.#failures++;
    const wasTrial = this.#trialInFlight;
    this.#trialInFlight = false;
    if (wasTrial || this.#failures >= this.#threshold) {
      this.#state = "open";
      this.#openedAt = nowMs;
    }
  }

  /** Milliseconds until a trial call is allowed (0 when not open). */
  retryInMs(nowMs = Date.now()): number {
    return this.#state === "open" ? Math.max(0, this.#openedAt + this.#cooldownMs - nowMs) : 0;
  }
}
