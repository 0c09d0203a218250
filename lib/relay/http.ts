/** Small helpers shared by the relay's routes: typed Hono env, body parsing, params. */
import type { Context } from "hono";
import type { z } from "zod";
import { ChatId } from "../protocol.ts";
import { RelayError } from "./errors.ts";

/**
 * Hono environment of the relay: the peer address from `Deno.serve`, the client IP, and the
 * key that limits count it under (`clientKey()`: IPv4 address or IPv6 /64).
 */
export type RelayEnv = {
  Bindings: { remoteAddr?: Deno.Addr };
  Variables: { clientIp: string; clientKey: string; workerId: string };
};

export type RelayContext = Context<RelayEnv>;

/** Parses the JSON body with `schema`: 400 `malformed_json` or `invalid_body` otherwise. */
export async function readBody<S extends z.ZodType>(
  c: RelayContext,
  schema: S,
): Promise<z.output<S>> {
  return parseBody(await c.req.text(), schema);
}

/** Parses a JSON body's text with `schema`: 400 `malformed_json` or `invalid_body` otherwise. */
export function parseBody<S extends z.ZodType>(text: string, schema: S): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new RelayError("malformed_json", "The request body is not valid JSON");
  }
  return parseWith(schema, json);
}

/** Validates `value` with `schema`, turning the first issue into a 400 `invalid_body`. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
  throw new RelayError("invalid_body", `Invalid request: ${where}${issue.message}`);
}

/** The validated `:chatId` route parameter (400 `bad_chat_id`). */
export function chatIdParam(c: RelayContext): string {
  return chatIdFrom(c.req.param("chatId"));
}

/** Validates a chat id from anywhere (400 `bad_chat_id`). */
export function chatIdFrom(value: string | undefined): string {
  const result = ChatId.safeParse(value);
  if (!result.success) {
    throw new RelayError("bad_chat_id", result.error.issues[0]!.message);
  }
  return result.data;
}

/** A non-negative integer query parameter, or `fallback` when absent (400 when malformed). */
export function intQuery(c: RelayContext, name: string, fallback: number): number {
  const raw = c.req.query(name);
  if (raw === undefined || raw === "") return fallback;
  // Digits only: `Number()` would read " " as 0 and "1e3" or "0x10" as numbers.
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new RelayError("bad_query", `Query parameter "${name}" must be a whole number`);
  }
  return n;
}

/** Whether the request asks for a WebSocket upgrade. */
export function isUpgrade(req: Request): boolean {
  return req.headers.get("upgrade")?.toLowerCase() === "websocket";
}
