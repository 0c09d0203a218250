/**
 * A circuit breaker for the model API (SPEC §4). After `failureThreshold` failed calls in
 * a row it opens and refuses calls for `cooldownMs`, so a dead or overloaded model is not
 * hammered and visitors get a fast, clear answer; then it is half-open and lets one trial
 * call through: that call's success closes it, its failure opens it again. A "call" is
 * what the caller judges as one attempt to get an answer, retries included.
 */

/** The breaker's state. */
export type BreakerState = "closed" | "open" | "half-open";

/** Counts consecutive failures and decides whether a call may go out. */
export class CircuitBreaker {
  #threshold: number;
  #cooldownMs: number;
  #failures = 0;
  #openedAt = 0;
  #open = false;
  #trialInFlight = false;

  constructor(failureThreshold = 5, cooldownMs = 30_000) {
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) {
      throw new RangeError(
        `Cannot create a circuit breaker: failureThreshold is "${failureThreshold}"`,
      );
    }
    if (!(cooldownMs >= 0)) {
      throw new RangeError(`Cannot create a circuit breaker: cooldownMs is "${cooldownMs}"`);
    }
    this.#threshold = failureThreshold;
    this.#cooldownMs = cooldownMs;
  }

  /** The state at `nowMs`. */
  state(nowMs: number = Date.now()): BreakerState {
    if (!this.#open) return "closed";
    return nowMs - this.#openedAt >= this.#cooldownMs ? "half-open" : "open";
  }

  /** Whether a call may go out now; a half-open breaker admits one trial at a time. */
  tryAcquire(nowMs: number = Date.now()): boolean {
    const state = this.state(nowMs);
    if (state === "closed") return true;
    if (state === "half-open" && !this.#trialInFlight) {
      this.#trialInFlight = true;
      return true;
    }
    return false;
  }

  /** Records a successful call: the breaker closes. */
  success(): void {
    this.#failures = 0;
    this.#open = false;
    this.#trialInFlight = false;
  }

  /** Records a failed call: the breaker opens at the threshold, or when a trial failed. */
  failure(nowMs: number = Date.now()): void {
    this.#failures++;
    const wasTrial = this.#trialInFlight;
    this.#trialInFlight = false;
    if (wasTrial || this.#failures >= this.#threshold) {
      this.#open = true;
      this.#openedAt = nowMs;
    }
  }

  /** Ends a call that proved nothing either way (cancelled by the caller). */
  release(): void {
    this.#trialInFlight = false;
  }

  /** Milliseconds until a trial call is allowed (0 when not open). */
  retryInMs(nowMs: number = Date.now()): number {
    return this.state(nowMs) === "open" ? this.#openedAt + this.#cooldownMs - nowMs : 0;
  }
}
