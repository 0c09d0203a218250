/**
 * The typed failure of the Redis engine: Redis cannot be reached or cannot write right now
 * (connection lost, server loading, out of memory, a failed disk). Nothing of the call was
 * written, and the same call may succeed once Redis is back, so the relay answers it with
 * 503 `store_unavailable` and `Retry-After` (`toRelayError()`), never a 500.
 */
import { RelayError } from "../errors.ts";

/** What a client is told to wait while Redis is away (seconds): reconnects take about this. */
export const REDIS_RETRY_AFTER_SECONDS = 5;

/** Redis (or the way to it) is unavailable; the call wrote nothing. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }

  /** The relay's answer to it: 503 `store_unavailable` with `Retry-After`. */
  toRelayError(): RelayError {
    return new RelayError(
      "store_unavailable",
      "The relay cannot reach its store right now; nothing was stored, try again shortly",
      { retryAfterSeconds: REDIS_RETRY_AFTER_SECONDS, cause: this },
    );
  }
}
