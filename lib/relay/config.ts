/** The relay's configuration (SPEC §9): env names in, a resolved `RelayConfig` out. */
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import {
  envBool,
  envBytes,
  envInt,
  envList,
  envNames,
  envOptionalSecret,
  envSecret,
  parseEnv,
  readEnv,
} from "../env.ts";
import { isLogLevel, type LogLevel } from "../log.ts";
import { parseRedisUrl } from "./redis/redis_url.ts";

/** The relay's resolved configuration: every field set, units in the name. */
export interface RelayConfig {
  port: number;
  hostname: string;
  chatPassword: string;
  serviceToken: string;
  /** Empty disables the admin export (and admin access to `/metrics`). */
  adminToken: string;
  /** "" or a path like "/terrarium" (no trailing slash). */
  basePath: string;
  /** A local file path (absolute) or a remote KV URL. */
  kvPath: string;
  hmacEnabled: boolean;
  hmacSecret: string;
  hmacMaxSkewSeconds: number;
  workerStaleThresholdMs: number;
  maxMessageLength: number;
  bodySizeLimitBytes: number;
  rateLimitWindowMs: number;
  rateLimitMaxPerIp: number;
  rateLimitMaxPerChat: number;
  /**
   * `TRUST_PROXY=true`: take the client IP from `X-Real-IP`/`X-Forwarded-For` of any peer.
   * Risk: without a proxy in front that overwrites these headers, any client can spoof its
   * IP and dodge per-client limits and the lockout.
   */
  trustProxy: boolean;
  /**
   * `TRUST_PROXY` unset: take those headers from loopback peers only (a proxy on the same
   * host, as in the shipped nginx site); every other peer is judged by its own address.
   * Without it, every visitor behind a local proxy would share one client key, and one
   * guesser would lock them all out. Risk: a local proxy that passes a client's own
   * `X-Real-IP` through (instead of setting it), or any other local process, can choose
   * its client key; the global failure budget and the open-turn cap still hold.
   * `TRUST_PROXY=false` turns this off.
   */
  trustLoopbackProxy: boolean;
  /** 0 keeps chats forever. */
  chatRetentionDays: number;
  /** Browser origins allowed on WebSocket handshakes; empty means the relay's own origin. */
  allowedOrigins: string[];
  /**
   * Accept the access code itself in bodies, queries and headers (the original protocol).
   * Risk: a code in a query string ends up in proxy logs; the shipped page uses tokens.
   */
  legacyAccessCode: boolean;
  logLevel: LogLevel;
  demoMode: boolean;
  /** Static page directory; "" serves no page. */
  webDir: string;
  turnLeaseMs: number;
  sessionTtlSeconds: number;
  accessCodeMaxFailures: number;
  accessCodeLockoutSeconds: number;
  maxPendingTurnsPerChat: number;
  maxSocketsPerChat: number;
  maxSocketsPerIp: number;
  maxWsFrameBytes: number;
  maxSocketBufferBytes: number;
  wsIdleTimeoutSeconds: number;
  /** Wrong access codes from all clients per lockout period before every check is slowed. */
  accessCodeGlobalFailures: number;
  /** Unanswered visitor messages in the whole queue (429 `queue_full` beyond). */
  maxOpenTurns: number;
  /** Unanswered visitor messages per client key (429 `too_many_open_turns` beyond). */
  maxOpenTurnsPerClient: number;
  /** Visitor sockets relay-wide that are upgraded but not yet open. */
  maxPendingSockets: number;
  /** Frames a visitor socket may send per second (burst: four seconds' worth). */
  visitorWsFramesPerSecond: number;
  /** Frames a worker socket may send per second (burst: four seconds' worth). */
  workerWsFramesPerSecond: number;
  /**
   * `REDIS_URL` (`redis://` or `rediss://`): the store is Redis (several relays may share it)
   * instead of Deno KV at `kvPath`; "" keeps Deno KV.
   */
  redisUrl: string;
  /** `REDIS_PASSWORD`: Redis's password when it is not in `REDIS_URL`; "" for none. */
  redisPassword: string;
}

const DEFAULT_WEB_DIR = fileURLToPath(new URL("../../web/dist", import.meta.url));

function schema(demo: boolean) {
  return z.object({
    PORT: envInt(4100, 1, 65535),
    HOSTNAME: z.string().default("127.0.0.1"),
    CHAT_PASSWORD: envSecret("access_code", demo, "terra-demo"),
    SERVICE_TOKEN: envSecret("token", demo, "demo-service-token-not-for-production"),
    ADMIN_TOKEN: envOptionalSecret("token", demo),
    BASE_PATH: z.string().default("").refine(
      (v) => v === "" || /^\/[A-Za-z0-9._~\/-]*[^\/]$/.test(v),
      { message: 'must be empty or a path like "/terrarium" without a trailing slash' },
    ),
    KV_PATH: z.string().optional(),
    HMAC_ENABLED: envBool(false),
    HMAC_SECRET: envOptionalSecret("token", demo),
    HMAC_MAX_SKEW_SECONDS: envInt(300, 1, 3600),
    WORKER_STALE_THRESHOLD_MS: envInt(60_000, 1000),
    MAX_MESSAGE_LENGTH: envInt(4000, 1, 1_000_000),
    BODY_SIZE_LIMIT: envBytes("256kb"),
    RATE_LIMIT_WINDOW_MS: envInt(60_000, 100),
    RATE_LIMIT_MAX_PER_IP: envInt(30, 1),
    RATE_LIMIT_MAX_PER_CHAT: envInt(20, 1),
    // Unset is a third state (loopback peers only): see `trustLoopbackProxy`.
    TRUST_PROXY: envBool(false),
    CHAT_RETENTION_DAYS: envInt(30, 0, 36_500),
    ALLOWED_ORIGINS: envList(),
    LEGACY_ACCESS_CODE: envBool(true),
    LOG_LEVEL: z.string().default("info").refine(isLogLevel, {
      message: "must be debug, info, warn or error",
    }),
    DEMO_MODE: envBool(false),
    STATE_DIRECTORY: z.string().optional(),
    WEB_DIR: z.string().optional(),
    DENO_KV_ACCESS_TOKEN: z.string().optional(),
    TURN_LEASE_SECONDS: envInt(30, 1, 3600),
    SESSION_TTL_SECONDS: envInt(12 * 3600, 60),
    ACCESS_CODE_MAX_FAILURES: envInt(5, 1),
    ACCESS_CODE_LOCKOUT_SECONDS: envInt(900, 1),
    MAX_PENDING_TURNS_PER_CHAT: envInt(3, 1, 100),
    MAX_SOCKETS_PER_CHAT: envInt(8, 1),
    MAX_SOCKETS_PER_IP: envInt(32, 1),
    MAX_WS_FRAME_BYTES: envBytes("64kb"),
    MAX_SOCKET_BUFFER_BYTES: envBytes("1mb"),
    WS_IDLE_TIMEOUT_SECONDS: envInt(30, 0, 3600),
    ACCESS_CODE_GLOBAL_FAILURES: envInt(100, 1),
    MAX_OPEN_TURNS: envInt(100, 1),
    MAX_OPEN_TURNS_PER_CLIENT: envInt(6, 1),
    MAX_PENDING_SOCKETS: envInt(256, 1),
    // The page sends a ping every 20 s; a worker streams hundreds of chunks a second.
    VISITOR_WS_FRAMES_PER_SECOND: envInt(5, 1),
    WORKER_WS_FRAMES_PER_SECOND: envInt(2000, 1),
    REDIS_URL: z.string().default(""),
    REDIS_PASSWORD: z.string().default(""),
  }).superRefine((env, ctx) => {
    if (env.REDIS_URL !== "") {
      try {
        parseRedisUrl(env.REDIS_URL, env.REDIS_PASSWORD);
      } catch (error) {
        const path = /REDIS_PASSWORD/.test((error as Error).message)
          ? "REDIS_PASSWORD"
          : "REDIS_URL";
        ctx.addIssue({
          code: "custom",
          path: [path],
          message: (error as Error).message.replace(/^Cannot (parse|use) REDIS_\w+: /, ""),
        });
      }
    }
    if (env.HMAC_ENABLED && !env.HMAC_SECRET && !demo) {
      ctx.addIssue({
        code: "custom",
        path: ["HMAC_SECRET"],
        message: "is required when HMAC_ENABLED is true",
      });
    }
    // Also with a bad field elsewhere, so every problem is reported at once.
  }, { when: () => true });
}

/** Every variable the relay reads (its schema's keys); `--allow-env` grants exactly these. */
export const RELAY_ENV_NAMES = envNames(schema(false));

/** The default KV file: `$STATE_DIRECTORY/relay.kv` under systemd, else `./data/relay.kv`. */
function defaultKvPath(stateDirectory: string | undefined): string {
  const stateDir = stateDirectory?.split(":")[0];
  return stateDir ? join(stateDir, "relay.kv") : resolve("data", "relay.kv");
}

/** Whether `kvPath` names a remote KV (KV Connect) rather than a local file. */
export function isRemoteKv(kvPath: string): boolean {
  return /^https?:\/\//.test(kvPath);
}

/** Resolves raw env strings into a `RelayConfig`, or throws a `ConfigError` naming each problem. */
export function parseRelayConfig(raw: Record<string, string | undefined>): RelayConfig {
  const demo = envBool(false).safeParse(raw.DEMO_MODE).data ?? false;
  const env = parseEnv(schema(demo), raw);
  const kvPath = env.KV_PATH ?? defaultKvPath(env.STATE_DIRECTORY);
  return {
    port: env.PORT,
    hostname: env.HOSTNAME,
    chatPassword: env.CHAT_PASSWORD,
    serviceToken: env.SERVICE_TOKEN,
    adminToken: env.ADMIN_TOKEN ?? "",
    basePath: env.BASE_PATH,
    kvPath: isRemoteKv(kvPath) || kvPath === ":memory:" || isAbsolute(kvPath)
      ? kvPath
      : resolve(kvPath),
    hmacEnabled: env.HMAC_ENABLED,
    hmacSecret: env.HMAC_SECRET ?? (env.HMAC_ENABLED ? env.SERVICE_TOKEN : ""),
    hmacMaxSkewSeconds: env.HMAC_MAX_SKEW_SECONDS,
    workerStaleThresholdMs: env.WORKER_STALE_THRESHOLD_MS,
    maxMessageLength: env.MAX_MESSAGE_LENGTH,
    bodySizeLimitBytes: env.BODY_SIZE_LIMIT,
    rateLimitWindowMs: env.RATE_LIMIT_WINDOW_MS,
    rateLimitMaxPerIp: env.RATE_LIMIT_MAX_PER_IP,
    rateLimitMaxPerChat: env.RATE_LIMIT_MAX_PER_CHAT,
    trustProxy: env.TRUST_PROXY,
    trustLoopbackProxy: raw.TRUST_PROXY === undefined,
    chatRetentionDays: env.CHAT_RETENTION_DAYS,
    allowedOrigins: env.ALLOWED_ORIGINS,
    legacyAccessCode: env.LEGACY_ACCESS_CODE,
    logLevel: env.LOG_LEVEL as LogLevel,
    demoMode: env.DEMO_MODE,
    webDir: env.WEB_DIR === undefined
      ? DEFAULT_WEB_DIR
      : env.WEB_DIR === ""
      ? ""
      : resolve(env.WEB_DIR),
    turnLeaseMs: env.TURN_LEASE_SECONDS * 1000,
    sessionTtlSeconds: env.SESSION_TTL_SECONDS,
    accessCodeMaxFailures: env.ACCESS_CODE_MAX_FAILURES,
    accessCodeLockoutSeconds: env.ACCESS_CODE_LOCKOUT_SECONDS,
    maxPendingTurnsPerChat: env.MAX_PENDING_TURNS_PER_CHAT,
    maxSocketsPerChat: env.MAX_SOCKETS_PER_CHAT,
    maxSocketsPerIp: env.MAX_SOCKETS_PER_IP,
    maxWsFrameBytes: env.MAX_WS_FRAME_BYTES,
    maxSocketBufferBytes: env.MAX_SOCKET_BUFFER_BYTES,
    wsIdleTimeoutSeconds: env.WS_IDLE_TIMEOUT_SECONDS,
    accessCodeGlobalFailures: env.ACCESS_CODE_GLOBAL_FAILURES,
    maxOpenTurns: env.MAX_OPEN_TURNS,
    maxOpenTurnsPerClient: env.MAX_OPEN_TURNS_PER_CLIENT,
    maxPendingSockets: env.MAX_PENDING_SOCKETS,
    visitorWsFramesPerSecond: env.VISITOR_WS_FRAMES_PER_SECOND,
    workerWsFramesPerSecond: env.WORKER_WS_FRAMES_PER_SECOND,
    redisUrl: env.REDIS_URL,
    redisPassword: env.REDIS_PASSWORD,
  };
}

/** Reads the relay's variables (env file first, environment wins) and resolves them. */
export function loadRelayConfig(envFile?: string): RelayConfig {
  return parseRelayConfig(readEnv(RELAY_ENV_NAMES, envFile));
}
