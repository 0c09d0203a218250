/** The worker's view of a relay refusal, shared by the HTTP and socket transports. */
import type { z } from "zod";

/** A refusal from the relay, with its `{error, code}`; `status` 0: it could not be reached. */
export class RelayRequestError extends Error {
  /** The HTTP status, or 0 for network errors and a socket that went away. */
  readonly status: number;
  /** The relay's stable error code (or a client-side one such as "unreachable"). */
  readonly code: string;

  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RelayRequestError";
    this.status = status;
    this.code = code;
  }
}

/** `value` checked against `schema`; a mismatch is the relay's fault (502 `bad_response`). */
export function parseResult<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new RelayRequestError(
    502,
    "bad_response",
    `The relay's answer to "${what}" does not match the protocol`,
    { cause: result.error },
  );
}
