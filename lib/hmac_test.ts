import { assertEquals } from "../tests/_assert.ts";
import {
  LEGACY_SCOPE_HEADER,
  LEGACY_SIGNATURE_HEADER,
  LEGACY_TIMESTAMP_HEADER,
  NONCE_HEADER,
  NonceCache,
  signLegacyRequest,
  signRequest,
  TIMESTAMP_HEADER,
  verifyLegacySignature,
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

// Signatures below were computed by CPython's hmac over its json.dumps(sort_keys=True).
const LEGACY_TS = "1764625770";
const LEGACY_NOW = Number(LEGACY_TS) * 1000;
const LEGACY_WIRE =
  '{"agentApi": {"status": "online", "detail": null, "checkedAt": "2026-12-01T21:49:30.158299", ' +
  '"latencyMs": null}, "llm": {"status": "degraded", "detail": "Müde — 😴", "checkedAt": null, ' +
  '"latencyMs": 1.0}}';

function legacy(signature: string, overrides: Partial<{ ts: string; scope: string }> = {}) {
  const headers: Record<string, string> = {
    [LEGACY_SIGNATURE_HEADER]: signature,
    [LEGACY_TIMESTAMP_HEADER]: overrides.ts ?? LEGACY_TS,
    [LEGACY_SCOPE_HEADER]: overrides.scope ?? "terra-worker",
  };
  return new Headers(headers);
}

Deno.test("the original scheme verifies Python's signature over its re-serialised body", async () => {
  const post = (headers: Headers, bodyText = LEGACY_WIRE, nowMs = LEGACY_NOW) =>
    verifyLegacySignature(
      SECRET,
      { method: "POST", apiPath: "/api/worker/status", headers, bodyText },
      300,
      nowMs,
    );
  const good = "01edc0672437e29b497b36f3884464cc82afe0afb30c1d46b7a85820a50a9779";
  assertEquals(await post(legacy(good)), null);
  assertEquals(await post(legacy(good.toUpperCase())), null);
  assertEquals(
    await verifyLegacySignature(
      SECRET,
      {
        method: "GET",
        apiPath: "/api/chats/open",
        headers: legacy("5b19080d59ad82f5ae30fd1a7a076d09e195020903b3a5dab99413adf263a42f"),
        bodyText: "",
      },
      300,
      LEGACY_NOW,
    ),
    null,
  );
  assertEquals(
    await post(legacy(good), LEGACY_WIRE.replace("Müde", "Mude")),
    "The signature does not match",
  );
  assertEquals(
    await post(legacy(good), LEGACY_WIRE, LEGACY_NOW + 301_000),
    "The signature timestamp is outside the allowed clock skew",
  );
  assertEquals(await post(legacy(good), "{not json"), "The signed body is not JSON");
  assertEquals(
    await post(legacy(good, { scope: "other" })),
    "The signature headers are malformed",
  );
  assertEquals(await post(legacy(good, { ts: "12.5" })), "The signature headers are malformed");
  assertEquals(await post(new Headers()), "The request is not signed");
});

Deno.test("signLegacyRequest signs what verifyLegacySignature accepts", async () => {
  const body = '{"content":"ünïcödé","done":false}';
  const headers = await signLegacyRequest(SECRET, "POST", "/api/chat/a/agent-chunk", body);
  const check = (apiPath: string) =>
    verifyLegacySignature(
      SECRET,
      { method: "POST", apiPath, headers: new Headers(headers), bodyText: body },
      300,
    );
  assertEquals(await check("/api/chat/a/agent-chunk"), null);
  assertEquals(await check("/api/chat/b/agent-chunk"), "The signature does not match");
});
