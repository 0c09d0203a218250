/**
 * How model calls fail (SPEC §4): one `AgentError` with a `kind` the worker turns into a
 * clear notice for the visitor, and whether a retry may help. Only failures before the
 * first delta are retryable: after it the visitor has seen part of an answer.
 */
import OpenAI from "openai";
import { networkCause } from "../network_cause.ts";

/** Why a model call failed. */
export type AgentErrorKind =
  | "unavailable"
  | "rate_limited"
  | "timeout"
  | "stream_cut"
  | "circuit_open"
  | "bad_response"
  | "aborted";

const RETRYABLE_KINDS = new Set<AgentErrorKind>(["unavailable", "rate_limited", "timeout"]);

/** A model call that failed, classified for retries and for the visitor's notice. */
export class AgentError extends Error {
  readonly kind: AgentErrorKind;
  /** Whether trying the same request again may work. */
  readonly retryable: boolean;
  /** The HTTP status, when the server answered with an error. */
  readonly status: number | undefined;
  /** The server's requested wait (429 `Retry-After`), in ms. */
  readonly retryAfterMs: number | undefined;
  constructor(
    kind: AgentErrorKind,
    message: string,
    options: { cause?: unknown; retryable?: boolean; status?: number; retryAfterMs?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "AgentError";
    this.kind = kind;
    this.retryable = options.retryable ?? RETRYABLE_KINDS.has(kind);
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Milliseconds the server asked to wait: `retry-after-ms`, or `retry-after` seconds/date. */
function retryAfterMs(headers: Headers | undefined): number | undefined {
  const ms = Number(headers?.get("retry-after-ms") ?? NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers?.get("retry-after");
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** What was going on when a request failed. */
export interface FailureContext {
  signal?: AbortSignal | undefined;
  idle?: boolean;
  total?: boolean;
  /** The response headers had arrived: the stream was being read. */
  opened?: boolean;
  started?: boolean;
  /** The timeouts, for the message. */
  timeouts?: { timeoutMs: number; idleTimeoutMs: number };
}

/** Maps whatever a request threw to an `AgentError`. */
export function classify(error: unknown, context: FailureContext): AgentError {
  if (error instanceof AgentError) return error;
  const cause = error;
  const detail = error instanceof Error ? error.message : String(error);
  const retryable = !context.started; // only before the first delta
  if (context.signal?.aborted) {
    return new AgentError("aborted", "The request was stopped", { cause });
  }
  if (context.idle) {
    const what = context.started ? "stopped sending" : "sent nothing";
    const message = `The model ${what} for ${context.timeouts?.idleTimeoutMs} ms`;
    return new AgentError("timeout", message, { cause, retryable });
  }
  if (context.total || error instanceof OpenAI.APIConnectionTimeoutError) {
    // The time budget is spent: trying again would only double the visitor's wait.
    const message = `The model did not finish within ${context.timeouts?.timeoutMs} ms`;
    return new AgentError("timeout", message, { cause, retryable: false });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    const message = `The model API cannot be reached: ${networkCause(error)}`;
    return new AgentError("unavailable", message, { cause });
  }
  const status = error instanceof OpenAI.APIError ? error.status : undefined;
  if (status === 429) {
    const wait = retryAfterMs((error as InstanceType<typeof OpenAI.APIError>).headers);
    const message = "The model API is rate limiting (HTTP 429)";
    return new AgentError("rate_limited", message, { cause, status, retryAfterMs: wait });
  }
  if (status !== undefined) {
    const message = status >= 500
      ? `The model API failed (HTTP ${status})`
      : `The model API refused the request (HTTP ${status})`;
    return new AgentError(status >= 500 ? "unavailable" : "bad_response", message, {
      cause,
      status,
    });
  }
  if (error instanceof SyntaxError) {
    const message = `The model's answer could not be read: ${detail}`;
    return new AgentError("bad_response", message, { cause, retryable });
  }
  if (context.opened) {
    const message = `The model's stream broke off: ${detail}`;
    return new AgentError("stream_cut", message, { cause, retryable });
  }
  return new AgentError("unavailable", `The model API request failed: ${detail}`, { cause });
}
