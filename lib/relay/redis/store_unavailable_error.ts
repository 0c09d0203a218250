/**
 * The typed failure of the Redis engine: Redis cannot be reached or cannot write right now
 * (connection lost, server loading, out of memory, a failed disk). Nothing of the call was
 * written, and the same call may succeed once Redis is back, so the relay answers it with
 * 503 `store_unavailable` and `Retry-After` (`toRelayError()`), never a 500.
 */
import { ErrorReply } from "@redis/client";
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

/**
 * Replies Redis gives when it is up but cannot take the write now (the first word of an
 * error reply): these are the server's state, not a bad command, so they count as unavailable.
 */
const UNAVAILABLE_REPLIES =
  /^(LOADING|MISCONF|OOM|READONLY|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|NOREPLICAS)\b/;

/**
 * Whether `error` from the client means Redis is unavailable (rather than a bug in a command):
 * any failure that is not an error reply (socket closed, client offline, timeout), and the
 * server-state replies above.
 */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof StoreUnavailableError) return true;
  return !(error instanceof ErrorReply) || UNAVAILABLE_REPLIES.test(error.message);
}
