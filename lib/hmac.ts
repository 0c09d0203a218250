/**
 * HMAC request signing between worker and relay (SPEC §3). The signature covers the
 * method, the path with its query, a timestamp, a nonce and the SHA-256 of the raw body,
 * so a captured request cannot be replayed, re-targeted or altered. The original
 * deployment's scheme (no nonce, a re-serialised body) is verified here too.
 */
import { constantTimeEqual, sha256Hex } from "./digest.ts";
import { pythonCanonicalJson } from "./python_json.ts";

export const SIGNATURE_HEADER = "x-terrarium-signature";
export const TIMESTAMP_HEADER = "x-terrarium-timestamp";
export const NONCE_HEADER = "x-terrarium-nonce";

const encoder = new TextEncoder();

function toHex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function hmacHex(secret: string, text: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return toHex(await crypto.subtle.sign("HMAC", key, encoder.encode(text)));
}

/** The string that is signed. `pathAndQuery` is e.g. "/terrarium/api/chats/open?x=1". */
export function canonicalRequest(
  method: string,
  pathAndQuery: string,
  timestamp: string,
  nonce: string,
  body: Uint8Array,
): string {
  const bodyHash = sha256Hex(body);
  return [method.toUpperCase(), pathAndQuery, timestamp, nonce, bodyHash].join("\n");
}

/** Headers that sign a request (worker side). */
export async function signRequest(
  secret: string,
  method: string,
  pathAndQuery: string,
  body: Uint8Array = new Uint8Array(),
  nowMs = Date.now(),
): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(nowMs / 1000));
  const nonce = crypto.randomUUID();
  const text = canonicalRequest(method, pathAndQuery, timestamp, nonce, body);
  return {
    [TIMESTAMP_HEADER]: timestamp,
    [NONCE_HEADER]: nonce,
    [SIGNATURE_HEADER]: await hmacHex(secret, text),
  };
}

/** Why a signed request is refused, or null when its signature is good and fresh. */
export async function verifySignature(
  secret: string,
  request: { method: string; pathAndQuery: string; headers: Headers; body: Uint8Array },
  maxSkewSeconds: number,
  nonces: NonceCache,
  nowMs = Date.now(),
): Promise<string | null> {
  const timestamp = request.headers.get(TIMESTAMP_HEADER);
  const nonce = request.headers.get(NONCE_HEADER);
  const signature = request.headers.get(SIGNATURE_HEADER);
  if (!timestamp || !nonce || !signature) return "The request is not signed";
  if (!/^\d{1,12}$/.test(timestamp) || nonce.length > 128) {
    return "The signature headers are malformed";
  }
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > maxSkewSeconds) {
    return "The signature timestamp is outside the allowed clock skew";
  }
  const text = canonicalRequest(
    request.method,
    request.pathAndQuery,
    timestamp,
    nonce,
    request.body,
  );
  if (!constantTimeEqual(await hmacHex(secret, text), signature.toLowerCase())) {
    return "The signature does not match";
  }
  if (!nonces.remember(nonce, nowMs + maxSkewSeconds * 2000)) return "The nonce was already used";
  return null;
}

/** Nonces seen within the skew window; a nonce seen twice is a replay. */
export class NonceCache {
  #expiries = new Map<string, number>();
  #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  /** Remembers `nonce` until `expiresAtMs`; false when it was already there. */
  remember(nonce: string, expiresAtMs: number, nowMs = Date.now()): boolean {
    if (this.#expiries.has(nonce)) return false;
    if (this.#expiries.size >= this.#max) this.#prune(nowMs);
    this.#expiries.set(nonce, expiresAtMs);
    return true;
  }

  #prune(nowMs: number): void {
    for (const [nonce, expiry] of this.#expiries) {
      if (expiry <= nowMs) this.#expiries.delete(nonce);
    }
    // Still full of live nonces: drop the oldest (insertion order) rather than grow.
    for (const nonce of this.#expiries.keys()) {
      if (this.#expiries.size < this.#max) break;
      this.#expiries.delete(nonce);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The original deployment's scheme, accepted beside ours so its Python worker keeps working.

export const LEGACY_SIGNATURE_HEADER = "x-signature";
export const LEGACY_TIMESTAMP_HEADER = "x-signature-ts";
export const LEGACY_SCOPE_HEADER = "x-signature-scope";
export const LEGACY_SCOPE = "terra-worker";

/**
 * The string the original worker signs: `METHOD\nPATH\nTIMESTAMP\nBODY`, PATH from `/api`
 * on (no base path, no query), BODY empty for GET, else the body re-serialised as Python's
 * sorted, compact `json.dumps` writes it (see python_json.ts). Throws on a body that is
 * not JSON.
 */
export function legacyCanonicalRequest(
  method: string,
  apiPath: string,
  timestamp: string,
  bodyText: string,
): string {
  const upper = method.toUpperCase();
  const body = upper === "GET" || bodyText.trim() === "" ? "" : pythonCanonicalJson(bodyText);
  return [upper, apiPath, timestamp, body].join("\n");
}

/** Headers the original worker sends (used by tests and tools that speak its protocol). */
export async function signLegacyRequest(
  secret: string,
  method: string,
  apiPath: string,
  bodyText = "",
  nowMs = Date.now(),
): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(nowMs / 1000));
  const text = legacyCanonicalRequest(method, apiPath, timestamp, bodyText);
  return {
    [LEGACY_SIGNATURE_HEADER]: await hmacHex(secret, text),
    [LEGACY_TIMESTAMP_HEADER]: timestamp,
    [LEGACY_SCOPE_HEADER]: LEGACY_SCOPE,
  };
}

/**
 * Why a request signed the original way is refused, or null when it is good and fresh.
 * There is no nonce: within the skew window a captured request can be sent again (the
 * caller refuses repeated replies; see README "Migrating from the original deployment").
 */
export async function verifyLegacySignature(
  secret: string,
  request: { method: string; apiPath: string; headers: Headers; bodyText: string },
  maxSkewSeconds: number,
  nowMs = Date.now(),
): Promise<string | null> {
  const signature = request.headers.get(LEGACY_SIGNATURE_HEADER);
  const timestamp = request.headers.get(LEGACY_TIMESTAMP_HEADER);
  const scope = request.headers.get(LEGACY_SCOPE_HEADER);
  if (!signature || !timestamp) return "The request is not signed";
  if (!/^\d{1,12}$/.test(timestamp) || (scope !== null && scope !== LEGACY_SCOPE)) {
    return "The signature headers are malformed";
  }
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > maxSkewSeconds) {
    return "The signature timestamp is outside the allowed clock skew";
  }
  let text: string;
  try {
    text = legacyCanonicalRequest(request.method, request.apiPath, timestamp, request.bodyText);
  } catch {
    return "The signed body is not JSON";
  }
  if (!constantTimeEqual(await hmacHex(secret, text), signature.toLowerCase())) {
    return "The signature does not match";
  }
  return null;
}
