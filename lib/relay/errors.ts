/** The one error type that reaches a relay client, always as `{error, code}` JSON. */
import type { ErrorBody } from "../protocol.ts";

/** A client-facing failure with an HTTP status and a stable machine-readable code. */
export class RelayError extends Error {
  readonly status: number;
  readonly code: string;
  /** Seconds to wait before retrying; sent as `Retry-After` with 429 and 503. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    options?: { retryAfterSeconds?: number; cause?: unknown },
  ) {
    super(message, { cause: options?.cause });
    this.name = "RelayError";
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  /** The JSON body clients see. */
  toBody(): ErrorBody {
    return { error: this.message, code: this.code };
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
