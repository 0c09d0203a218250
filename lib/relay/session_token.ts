/**
 * Signed, expiring visitor tokens for `POST /api/session` (SPEC §3). A token is
 * `base64url(payload).base64url(HMAC-SHA256(payload))`; the key is derived from the service
 * token and the access code, so changing the access code revokes every issued token.
 */

const encoder = new TextEncoder();

function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function fromB64url(text: string): Uint8Array | null {
  try {
    const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

interface TokenPayload {
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** Random id, so two tokens issued in the same second differ. */
  jti: string;
}

export class SessionTokens {
  #key: Promise<CryptoKey>;
  #ttlSeconds: number;

  constructor(serviceToken: string, accessCode: string, ttlSeconds: number) {
    this.#ttlSeconds = ttlSeconds;
    this.#key = crypto.subtle.importKey(
      "raw",
      encoder.encode(`terrarium-session\n${serviceToken}\n${accessCode}`),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
  }

  /** A new token and its expiry. */
  async issue(nowMs = Date.now()): Promise<{ token: string; expiresAt: string }> {
    const payload: TokenPayload = {
      exp: Math.floor(nowMs / 1000) + this.#ttlSeconds,
      jti: crypto.randomUUID(),
    };
    const body = encoder.encode(JSON.stringify(payload));
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await this.#key, body));
    return {
      token: `${b64url(body)}.${b64url(mac)}`,
      expiresAt: new Date(payload.exp * 1000).toISOString(),
    };
  }

  /** Whether `token` was issued by this relay and has not expired. */
  async verify(token: string, nowMs = Date.now()): Promise<boolean> {
    const [bodyPart, macPart, extra] = token.split(".");
    if (!bodyPart || !macPart || extra !== undefined || token.length > 2048) return false;
    const body = fromB64url(bodyPart);
    const mac = fromB64url(macPart);
    if (!body || !mac) return false;
    const key = await this.#key;
    const valid = await crypto.subtle.verify(
      "HMAC",
      key,
      mac as Uint8Array<ArrayBuffer>,
      body as Uint8Array<ArrayBuffer>,
    );
    if (!valid) return false;
    try {
      const payload = JSON.parse(new TextDecoder().decode(body)) as TokenPayload;
      return typeof payload.exp === "number" && payload.exp * 1000 > nowMs;
    } catch {
      return false;
    }
  }
}
