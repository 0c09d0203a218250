/**
 * Who may call what: visitors (session token, or the access code itself where
 * `LEGACY_ACCESS_CODE` allows), workers (service token, optionally HMAC-signed), the
 * operator (admin token). All secret comparisons are constant-time.
 */
import type { MiddlewareHandler } from "hono";
import { NonceCache, verifySignature } from "../hmac.ts";
import type { Logger } from "../log.ts";
import { AccessGuard } from "./access_guard.ts";
import type { RelayConfig } from "./config.ts";
import { RelayError } from "./errors.ts";
import type { RelayContext, RelayEnv } from "./http.ts";
import { SecretMatcher } from "./secret_matcher.ts";
import { SessionTokens } from "./session_token.ts";

export const SERVICE_TOKEN_HEADER = "x-service-token";
export const WORKER_ID_HEADER = "x-worker-id";
const LEGACY_CODE_HEADER = "x-access-code";

export class Auth {
  readonly sessions: SessionTokens;
  readonly guard: AccessGuard;
  #config: RelayConfig;
  #nonces = new NonceCache();
  /** Checked on every worker request: a synchronous hash, not two WebCrypto digests. */
  #serviceToken: SecretMatcher;
  /** Null when the admin API is disabled (no ADMIN_TOKEN). */
  #adminToken: SecretMatcher | null;

  /** `log` gets the guard's warning when many wrong access codes arrive. */
  constructor(config: RelayConfig, log?: Logger) {
    this.#config = config;
    this.#serviceToken = new SecretMatcher(config.serviceToken);
    this.#adminToken = config.adminToken ? new SecretMatcher(config.adminToken) : null;
    this.sessions = new SessionTokens(
      config.serviceToken,
      config.chatPassword,
      config.sessionTtlSeconds,
    );
    this.guard = new AccessGuard(config.chatPassword, {
      maxFailures: config.accessCodeMaxFailures,
      lockoutSeconds: config.accessCodeLockoutSeconds,
      globalFailures: config.accessCodeGlobalFailures,
      log,
    });
  }

  /**
   * Authenticates a visitor request: `Authorization: Bearer <session token>`, or (legacy)
   * the access code in the body, an `x-access-code` header or an `accessCode` query.
   */
  async visitor(c: RelayContext, bodyCode?: string): Promise<void> {
    const bearer = bearerToken(c.req.header("authorization"));
    if (bearer !== null) {
      if (await this.sessions.verify(bearer)) return;
      throw new RelayError(
        401,
        "bad_token",
        "Your session has expired; enter the access code again",
      );
    }
    const code = bodyCode ?? c.req.header(LEGACY_CODE_HEADER) ?? c.req.query("accessCode");
    if (code === undefined) {
      throw new RelayError(401, "missing_credentials", "Enter the access code to chat");
    }
    if (!this.#config.legacyAccessCode) {
      throw new RelayError(
        401,
        "legacy_access_code_disabled",
        "Sending the access code with each request is disabled; get a token from /api/session",
      );
    }
    await this.guard.check(c.get("clientKey"), code);
  }

  /** Whether the request carries a service-token header (it is then judged as a worker). */
  claimsWorker(c: RelayContext): boolean {
    return c.req.header(SERVICE_TOKEN_HEADER) !== undefined;
  }

  /** Authenticates a worker request; sets the `workerId` variable. */
  async worker(c: RelayContext): Promise<void> {
    const token = c.req.header(SERVICE_TOKEN_HEADER);
    if (token === undefined) {
      throw new RelayError(
        401,
        "missing_service_token",
        "This route needs the x-service-token header",
      );
    }
    if (!this.#serviceToken.matches(token)) {
      throw new RelayError(401, "bad_service_token", "The service token is not right");
    }
    if (this.#config.hmacEnabled) {
      const url = new URL(c.req.url);
      const problem = await verifySignature(
        this.#config.hmacSecret,
        {
          method: c.req.method,
          pathAndQuery: url.pathname + url.search,
          headers: c.req.raw.headers,
          body: new Uint8Array(await c.req.arrayBuffer()),
        },
        this.#config.hmacMaxSkewSeconds,
        this.#nonces,
      );
      if (problem) throw new RelayError(401, "bad_signature", problem);
    }
    c.set("workerId", c.req.header(WORKER_ID_HEADER)?.slice(0, 80) || "default");
  }

  /** Authenticates the operator (`Authorization: Bearer <ADMIN_TOKEN>`). */
  admin(c: RelayContext): void {
    if (!this.#adminToken) {
      throw new RelayError(
        404,
        "admin_disabled",
        "The admin API is disabled: set ADMIN_TOKEN to enable it",
      );
    }
    const bearer = bearerToken(c.req.header("authorization"));
    if (bearer === null) {
      throw new RelayError(
        401,
        "missing_admin_token",
        "This route needs Authorization: Bearer <ADMIN_TOKEN>",
      );
    }
    if (!this.#adminToken.matches(bearer)) {
      throw new RelayError(401, "bad_admin_token", "The admin token is not right");
    }
  }

  /** Whether a request carries the service token or the admin token (`/metrics`). */
  serviceOrAdmin(c: RelayContext): boolean {
    const service = c.req.header(SERVICE_TOKEN_HEADER);
    const bearer = bearerToken(c.req.header("authorization"));
    return (service !== undefined && this.#serviceToken.matches(service)) ||
      (bearer !== null && this.#adminToken !== null && this.#adminToken.matches(bearer));
  }

  /** Middleware for worker routes. */
  requireWorker(): MiddlewareHandler<RelayEnv> {
    const check = (c: RelayContext) => this.worker(c);
    return async function requireWorker(c, next) {
      await check(c);
      await next();
    };
  }
}

/** The bearer token of an Authorization header, or null. */
export function bearerToken(header: string | undefined): string | null {
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match ? match[1]! : null;
}
