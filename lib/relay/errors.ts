/** The one error type that reaches a relay client, always as `{error, code}` JSON. */
import { ERROR_CODES, type ErrorBody, type ErrorCode } from "../protocol.ts";

/**
 * A client-facing failure with a stable machine-readable code from `ERROR_CODES`, which
 * fixes its HTTP status and retryability (so the socket ack and the HTTP answer agree).
 */
export class RelayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Whether the same request may succeed later (`ERROR_CODES`). */
  readonly retryable: boolean;
  /** Seconds to wait before retrying; sent as `Retry-After` with 429 and 503. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { retryAfterSeconds?: number; cause?: unknown },
  ) {
    super(message, { cause: options?.cause });
    this.name = "RelayError";
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.retryable = ERROR_CODES[code].retryable;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  /** The JSON body clients see. */
  toBody(): ErrorBody {
    return { error: this.message, code: this.code };
  }

  /** What a socket ack carries beside `ok: false`: the body, the status, retryability. */
  toAck(): ErrorBody & { status: number; retryable: boolean } {
    return { ...this.toBody(), status: this.status, retryable: this.retryable };
  }

  /** A `Response` with the JSON body, status and `Retry-After` when set. */
  toResponse(): Response {
    const headers = new Headers({ "content-type": "application/json; charset=utf-8" });
    if (this.retryAfterSeconds !== undefined) {
      headers.set("retry-after", String(Math.max(1, Math.ceil(this.retryAfterSeconds))));
    }
    return new Response(JSON.stringify(this.toBody()), { status: this.status, headers });
  }
}

/**
 * What Deno KV's SQLite backend says when it cannot write: a full disk (`SQLITE_FULL`), an
 * I/O error (a file size limit, a failing disk), a read-only file or directory, or a store
 * that cannot be opened. Deno reports these as plain `Error`/`TypeError` with SQLite's
 * message, so the message is all there is to go on.
 */
const STORE_FAILURE =
  /database or disk is full|disk I\/O error|readonly database|unable to open database file|database is locked|No space left on device|Read-only file system/i;

/** Whether `error` is the KV store failing to write (the disk, not the request). */
export function isStoreFailure(error: unknown): boolean {
  return error instanceof Error && !(error instanceof RelayError) &&
    STORE_FAILURE.test(error.message);
}

/**
 * 503 `store_unavailable` for a store that cannot write (SPEC §3 errors): the client learns
 * that nothing was stored and may retry, and the relay stays up; null for any other error.
 */
export function storeFailure(error: unknown): RelayError | null {
  // The Redis engine's `StoreUnavailableError` carries its own answer (a shorter Retry-After).
  if (error instanceof Error && error.name === "StoreUnavailableError") {
    const own = (error as { toRelayError?: () => unknown }).toRelayError?.();
    if (own instanceof RelayError) return own;
  }
  if (!isStoreFailure(error)) return null;
  return new RelayError(
    "store_unavailable",
    "The relay cannot save anything right now (its store is full or read-only); nothing was stored, try again later",
    { retryAfterSeconds: 30, cause: error },
  );
}

/** A turn id that names no turn of this chat. */
export function unknownTurn(turnId: string): RelayError {
  return new RelayError("unknown_turn", `No turn "${turnId}" in this chat`);
}
