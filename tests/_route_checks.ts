/**
 * What the relay's route and security tests share: error, header and Retry-After checks,
 * credentials, and small waits (the tests run against `_relay_in_process.ts`).
 */
import { ErrorBody } from "../lib/protocol.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  assertError as assertErrorBody,
  type Json,
  RecordingSocket,
  request,
  type Res,
  workerRequest,
} from "./_clients.ts";
export { eventually } from "./_clients.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

/** The worker's service-token header. */
export const SVC = { "x-service-token": TEST_SECRETS.SERVICE_TOKEN };
/** The HMAC secret of the signing tests. */
export const HMAC_SECRET = "hmac-0123456789abcdef0123456789abcdef";
/** The ws:// base of an http:// relay URL. */
export const wsBase = (url: string) => url.replace("http", "ws");

/** A 429 with a whole-seconds `Retry-After` within `[1, maxSeconds]`. */
export function assertRetryAfter(res: Res, maxSeconds: number): void {
  const value = res.headers.get("retry-after");
  assert(value !== null && /^\d+$/.test(value), `Retry-After: ${value}`);
  const seconds = Number(value);
  assert(seconds >= 1 && seconds <= maxSeconds, `Retry-After ${seconds} within 1..${maxSeconds}`);
}

/** The visitor messages stored in `chatId`, read with the service token. */
export async function storedContents(base: string, chatId: string): Promise<string[]> {
  const res = await workerRequest(base, `/api/chat/${chatId}/messages`);
  assertEquals(res.status, 200);
  return res.body.map((m: Json) => m.content);
}

/** A socket that must be refused: waits for its close and returns the code. */
export async function closeCodeOf(socket: RecordingSocket): Promise<number | null> {
  const code = await socket.waitClosed();
  await socket.close();
  return code;
}

/**
 * Changes the first character of a base64url text (its top six bits are all significant;
 * the last character of a 32-byte MAC carries two padding bits, so flipping it may not
 * change the bytes at all).
 */
export function flipFirst(text: string): string {
  return (text[0] === "A" ? "B" : "A") + text.slice(1);
}

/** The operator's bearer header. */
export const ADMIN = { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` };
/** A well-formed service token that is not the relay's. */
export const WRONG_SERVICE_TOKEN = "svc-wrong-0123456789abcdef012345678";
/** Small limits so the size checks are cheap to hit. */
export const SMALL_LIMITS = { BODY_SIZE_LIMIT: "2kb", MAX_MESSAGE_LENGTH: "100" };

/** The headers `secureHeaders` must put on every (non-upgrade) response. */
export function assertSecurityHeaders(res: { headers: Headers }, what: string): void {
  const h = res.headers;
  assertEquals(h.get("x-content-type-options"), "nosniff", `${what}: x-content-type-options`);
  assertEquals(h.get("x-frame-options"), "SAMEORIGIN", `${what}: x-frame-options`);
  assertEquals(h.get("referrer-policy"), "no-referrer", `${what}: referrer-policy`);
  assertEquals(h.get("cross-origin-resource-policy"), "same-site", `${what}: CORP`);
  assert(h.get("strict-transport-security")?.startsWith("max-age="), `${what}: HSTS`);
}

/** An error response: the status, the stable code, exactly `{error, code}`, JSON, headers. */
export function assertRouteError(
  res: Res,
  status: number,
  code: string,
  what = "",
  options: { upgrade?: boolean } = {},
): void {
  assertErrorBody(res, status, code, what);
  const label = `${what} → ${res.status} ${JSON.stringify(res.body)}`;
  assert(ErrorBody.safeParse(res.body).success, label);
  assert(res.body.error.length > 0, `${label}: a human sentence`);
  assert(
    res.headers.get("content-type")?.startsWith("application/json"),
    `${label}: JSON content type`,
  );
  // A refused WebSocket handshake is not a page; the relay skips the header set on upgrades.
  if (!options.upgrade) assertSecurityHeaders(res, label);
}

/** A POST with a raw (possibly broken) body. */
export function rawPost(url: string, rawBody: string, headers: Record<string, string> = {}) {
  return request(url, {
    method: "POST",
    rawBody,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** `assertRouteError()` options for a refused WebSocket handshake. */
export const UPGRADE = { upgrade: true };
