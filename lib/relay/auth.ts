/**
 * Who may call what: visitors (session token, or the access code itself where
 * `LEGACY_ACCESS_CODE` allows), workers (service token, optionally HMAC-signed), the
 * operator (admin token). All secret comparisons are constant-time.
 */
import type { MiddlewareHandler } from "hono";
import {
  LEGACY_SIGNATURE_HEADER,
  NonceCache,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verifyLegacySignature,
  verifySignature,
} from "../hmac.ts";
import type { Logger } from "../log.ts";
import { AccessGuard } from "./access_guard.ts";
import type { RelayConfig } from "./config.ts";
import { RelayError } from "./errors.ts";
import type { RelayContext, RelayEnv } from "./http.ts";
import type { RelayLimits } from "./relay_limits.ts";
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
  /** Checked on every worker request: a constant-time loop, no hash (`secret_matcher.ts`). */
  #serviceToken: SecretMatcher;
  /** Null when the admin API is disabled (no ADMIN_TOKEN). */
  #adminToken: SecretMatcher | null;

  /**
   * `log` gets the guard's warning when many wrong access codes arrive; `limits` count the
   * lockouts and wrong codes (`relayLimits()`; this relay's memory when absent).
   */
  constructor(
    config: RelayConfig,
    log?: Logger,
    options: { limits?: Pick<RelayLimits, "lockout" | "failureBudget"> } = {},
  ) {
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
      ...(options.limits
        ? { lockout: options.limits.lockout, budget: options.limits.failureBudget }
        : {}),
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
      throw new RelayError("bad_token", "Your session has expired; enter the access code again");
    }
    const code = bodyCode ?? c.req.header(LEGACY_CODE_HEADER) ?? c.req.query("accessCode");
    if (code === undefined) {
      throw new RelayError("missing_credentials", "Enter the access code to chat");
    }
    if (!this.#config.legacyAccessCode) {
      throw new RelayError(
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
    this.#checkServiceToken(c.req.header(SERVICE_TOKEN_HEADER));
    if (this.#config.hmacEnabled) {
      const problem = await this.#signatureProblem(c);
      if (problem) throw new RelayError("bad_signature", problem);
    }
    c.set("workerId", workerIdOf(c.req.header(WORKER_ID_HEADER)));
  }

  /**
   * Authenticates a worker request by its headers alone and returns the worker's id, as
   * `worker()` does; only for a relay without `HMAC_ENABLED` (a signature covers the body).
   */
  unsignedWorker(headers: Headers): string {
    if (this.#config.hmacEnabled) throw new Error("Cannot judge a worker by headers under HMAC");
    this.#checkServiceToken(headers.get(SERVICE_TOKEN_HEADER) ?? undefined);
    return workerIdOf(headers.get(WORKER_ID_HEADER) ?? undefined);
  }

  /** Throws 401 unless `token` is the service token. */
  #checkServiceToken(token: string | undefined): void {
    if (token === undefined) {
      throw new RelayError("missing_service_token", "This route needs the x-service-token header");
    }
    if (!this.#serviceToken.matches(token)) {
      throw new RelayError("bad_service_token", "The service token is not right");
    }
  }

  /**
   * Authenticates the worker socket handshake. Under HMAC, the original worker's handshake
   * carries the service token and no signature (it never signed it): it is let in as
   * notify-only, receiving `chat_activity` as the original relay sent it, while anything
   * it would do (claims, chunks, replies) must come over signed HTTP. Returns whether the
   * socket is notify-only.
   */
  async workerSocket(c: RelayContext): Promise<boolean> {
    const headers = c.req.raw.headers;
    const unsigned = this.#config.hmacEnabled && !headers.has(SIGNATURE_HEADER) &&
      !headers.has(TIMESTAMP_HEADER) && !headers.has(LEGACY_SIGNATURE_HEADER);
    if (!unsigned) {
      await this.worker(c);
      return false;
    }
    const token = c.req.header(SERVICE_TOKEN_HEADER);
    if (token === undefined || !this.#serviceToken.matches(token)) await this.worker(c);
    c.set("workerId", workerIdOf(c.req.header(WORKER_ID_HEADER)));
    return true;
  }

  /** Why the request's signature (ours, or the original worker's) is refused, or null. */
  async #signatureProblem(c: RelayContext): Promise<string | null> {
    const headers = c.req.raw.headers;
    const config = this.#config;
    // Ours is the default; the original scheme is used only when its header alone is there.
    if (headers.has(SIGNATURE_HEADER) || !headers.has(LEGACY_SIGNATURE_HEADER)) {
      const url = new URL(c.req.url);
      return await verifySignature(
        config.hmacSecret,
        {
          method: c.req.method,
          pathAndQuery: url.pathname + url.search,
          headers,
          body: new Uint8Array(await c.req.arrayBuffer()),
        },
        config.hmacMaxSkewSeconds,
        this.#nonces,
      );
    }
    const path = c.req.path;
    const apiPath = config.basePath && path.startsWith(`${config.basePath}/api/`)
      ? path.slice(config.basePath.length)
      : path;
    const problem = await verifyLegacySignature(
      config.hmacSecret,
      { method: c.req.method, apiPath, headers, bodyText: await c.req.text() },
      config.hmacMaxSkewSeconds,
    );
    if (problem) return problem;
    // No nonce in this scheme, so a captured request can be sent again inside the skew
    // window. A reply is the one that would do harm twice (a second stored answer), and the
    // original worker never posts the same reply twice in one second: refuse a repeat.
    if (c.req.method === "POST" && /\/agent$/.test(apiPath)) {
      const signature = headers.get(LEGACY_SIGNATURE_HEADER)!.toLowerCase();
      const expiresAt = Date.now() + config.hmacMaxSkewSeconds * 2000;
      if (!this.#nonces.remember(`legacy:${signature}`, expiresAt)) {
        return "This signed reply was already received";
      }
    }
    return null;
  }

  /** Authenticates the operator (`Authorization: Bearer <ADMIN_TOKEN>`). */
  admin(c: RelayContext): void {
    if (!this.#adminToken) {
      throw new RelayError(
        "admin_disabled",
        "The admin API is disabled: set ADMIN_TOKEN to enable it",
      );
    }
    const bearer = bearerToken(c.req.header("authorization"));
    if (bearer === null) {
      throw new RelayError(
        "missing_admin_token",
        "This route needs Authorization: Bearer <ADMIN_TOKEN>",
      );
    }
    if (!this.#adminToken.matches(bearer)) {
      throw new RelayError("bad_admin_token", "The admin token is not right");
    }
  }

  /**
   * Authenticates a metrics read (`/metrics`, `/api/metrics`): the admin token, or the
   * service token judged as a worker request, so under `HMAC_ENABLED` it must be signed.
   */
  async serviceOrAdmin(c: RelayContext): Promise<void> {
    const bearer = bearerToken(c.req.header("authorization"));
    if (bearer !== null && this.#adminToken !== null && this.#adminToken.matches(bearer)) return;
    if (c.req.header(SERVICE_TOKEN_HEADER) !== undefined) return await this.worker(c);
    throw new RelayError(
      "missing_credentials",
      "Metrics need the service token or the admin token",
    );
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

/** The worker id a request names (`x-worker-id`, at most 80 characters), or "default". */
function workerIdOf(header: string | undefined): string {
  return header?.slice(0, 80) || "default";
}

/** The bearer token of an Authorization header, or null. */
export function bearerToken(header: string | undefined): string | null {
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match ? match[1]! : null;
}
