import { assertEquals } from "../tests/_assert.ts";
import {
  NONCE_HEADER,
  NonceCache,
  signRequest,
  TIMESTAMP_HEADER,
  verifySignature,
} from "./hmac.ts";

const SECRET = "hmac-secret-0123456789abcdef";
const body = new TextEncoder().encode('{"content":"hi"}');

async function verify(
  headers: Record<string, string>,
  overrides: Partial<{ method: string; path: string; body: Uint8Array; secret: string }> = {},
  nonces = new NonceCache(),
  nowMs = Date.now(),
) {
  return await verifySignature(
    overrides.secret ?? SECRET,
    {
      method: overrides.method ?? "POST",
      pathAndQuery: overrides.path ?? "/api/chat/a/agent",
      headers: new Headers(headers),
      body: overrides.body ?? body,
    },
    300,
    nonces,
    nowMs,
  );
}

Deno.test("verifySignature() accepts a fresh signature once and refuses its replay", async () => {
  const headers = await signRequest(SECRET, "POST", "/api/chat/a/agent", body);
  const nonces = new NonceCache();
  assertEquals(await verify(headers, {}, nonces), null);
  assertEquals(await verify(headers, {}, nonces), "The nonce was already used");
});

Deno.test("verifySignature() refuses a changed body, path, method or secret", async () => {
  const headers = await signRequest(SECRET, "POST", "/api/chat/a/agent", body);
  const mismatch = "The signature does not match";
  assertEquals(await verify(headers, { body: new TextEncoder().encode("{}") }), mismatch);
  assertEquals(await verify(headers, { path: "/api/chat/b/agent" }), mismatch);
  assertEquals(await verify(headers, { method: "PUT" }), mismatch);
  assertEquals(await verify(headers, { secret: "another-secret-0123456789" }), mismatch);
});

Deno.test("verifySignature() refuses stale timestamps, missing and malformed headers", async () => {
  const old = await signRequest(SECRET, "POST", "/api/chat/a/agent", body, Date.now() - 600_000);
  assertEquals(await verify(old), "The signature timestamp is outside the allowed clock skew");
  assertEquals(await verify({}), "The request is not signed");
  const headers = await signRequest(SECRET, "POST", "/api/chat/a/agent", body);
  assertEquals(
    await verify({ ...headers, [TIMESTAMP_HEADER]: "soon" }),
    "The signature headers are malformed",
  );
  assertEquals(
    await verify({ ...headers, [NONCE_HEADER]: "x".repeat(200) }),
    "The signature headers are malformed",
  );
});

Deno.test("NonceCache stays bounded by dropping the oldest nonces", () => {
  const cache = new NonceCache(3);
  for (const nonce of ["a", "b", "c", "d"]) assertEquals(cache.remember(nonce, 10_000, 0), true);
  assertEquals(cache.remember("d", 10_000, 0), false);
  assertEquals(cache.remember("a", 10_000, 0), true);
});
