/**
 * The relay in this test's process, wired as `relay.ts` wires it and served on a free
 * 127.0.0.1 port with an `AbortSignal` (the way Fresh and Hono test handlers): for route
 * and socket checks that need no process of their own. Permissions, signals, restarts,
 * kills and full disks still need `_relay_process.ts`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CLOSE_GOING_AWAY } from "../lib/close_codes.ts";
import { Logger } from "../lib/log.ts";
import { Auth } from "../lib/relay/auth.ts";
import { ChatService, chatServiceParts } from "../lib/relay/chat_service.ts";
import { parseRelayConfig, RELAY_ENV_NAMES } from "../lib/relay/config.ts";
import { relayMetrics } from "../lib/relay/metrics.ts";
import { LogRing } from "../lib/relay/metrics_snapshot.ts";
import { relayApp } from "../lib/relay/relay_app.ts";
import { relayDeps } from "../lib/relay/relay_deps.ts";
import { relayLimits } from "../lib/relay/relay_limits.ts";
import { RedisConnection } from "../lib/relay/redis/redis_connection.ts";
import { type RedisShared, redisShared } from "../lib/relay/redis/redis_shared.ts";
import { parseRedisUrl } from "../lib/relay/redis/redis_url.ts";
import type { ChatStore } from "../lib/relay/store/chat_store.ts";
import { kvStore } from "../lib/relay/store/kv_store.ts";
import { redisStore } from "../lib/relay/store/redis_store.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

/** A relay served in-process: what route tests use of a `RelayProcess`. */
export interface InProcessRelay {
  /** "http://127.0.0.1:PORT" */
  url: string;
  port: number;
  env: Record<string, string>;
  /** Every log line so far (the JSON lines the process would print). */
  lines: string[];
}

const HOUSEKEEPING_MS = 1_000;

/**
 * Runs `fn` with a relay in this process (test defaults as `startRelay()`'s, overridden by
 * `env`; the store in memory, or Redis at `REDIS_URL` as `relay.ts` opens and shares it, so
 * several of these may share one) and always shuts it down: server, sockets, timers, store.
 */
export async function withAppRelay(
  env: Record<string, string>,
  fn: (relay: InProcessRelay) => Promise<void>,
  options: { wrapStore?: (store: ChatStore) => ChatStore } = {},
): Promise<void> {
  const fullEnv: Record<string, string> = {
    ...TEST_SECRETS,
    HOSTNAME: "127.0.0.1",
    KV_PATH: ":memory:",
    LOG_LEVEL: "info",
    WS_IDLE_TIMEOUT_SECONDS: "10",
    MAX_OPEN_TURNS_PER_CLIENT: "100000",
    MAX_OPEN_TURNS: "100000",
    ...env,
  };
  // As `readEnv()` hands them to the process: only the relay's names, "" as unset.
  const raw = Object.fromEntries(
    RELAY_ENV_NAMES.map((name) => [name, fullEnv[name] === "" ? undefined : fullEnv[name]]),
  );
  const config = parseRelayConfig(raw);
  const lines: string[] = [];
  const recentLogs = new LogRing(50, [
    config.chatPassword,
    config.serviceToken,
    config.adminToken,
    config.hmacSecret,
  ]);
  const log = new Logger("relay", config.logLevel, (line) => {
    lines.push(line);
    recentLogs.push(line);
  });
  // Quick reconnects: tests kill and restart Redis and wait for the relay to notice.
  const redis = config.redisUrl === "" ? null : new RedisConnection(
    parseRedisUrl(config.redisUrl, config.redisPassword),
    { log, reconnectBaseMs: 20, reconnectCapMs: 200 },
  );
  await redis?.connect(10_000);
  const engine = redis ? redisStore(redis) : kvStore(await Deno.openKv(config.kvPath));
  // A test may put a faulty store in front (one that refuses writes, say).
  const store = options.wrapStore?.(engine) ?? engine;
  const limits = relayLimits(config, redis);
  const auth = new Auth(config, log, { limits });
  const metrics = relayMetrics({
    visitorSockets: () => parts.visitors.size,
    workerSockets: () => parts.workers.size,
    openTurns: () => service.openTurns,
    accessCodeDelayMs: () => auth.guard.delayMs(),
  });
  const shared: RedisShared | null = redis
    ? await redisShared(redis, { log, metrics, timeoutMs: 10_000 })
    : null;
  const parts = chatServiceParts(store, config, log, metrics, shared?.parts);
  const service = new ChatService(parts);
  await service.start();
  const app = relayApp(relayDeps(service, parts, {
    auth,
    limits,
    frontendServed: config.webDir !== "" && existsSync(join(config.webDir, "index.html")),
    recentLogs,
    ...(redis ? { storeHealth: () => redis.health() } : {}),
  }));
  const shutdown = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: shutdown.signal, onListen: () => {} },
    (req, info) => app.fetch(req, { remoteAddr: info.remoteAddr }),
  );
  const housekeeping = setInterval(() => {
    // As relay.ts: no sweep while Redis is away, and of several relays one sweeps.
    if (redis && !redis.up) return;
    const leads = shared ? shared.leader.leads() : Promise.resolve(true);
    leads.then((yes) => yes ? service.expireLeases() : undefined)
      .catch((error) => log.error("lease sweep failed", { error }));
  }, HOUSEKEEPING_MS);
  const port = server.addr.port;
  try {
    await fn({ url: `http://127.0.0.1:${port}`, port, env: fullEnv, lines });
  } finally {
    clearInterval(housekeeping);
    limits.close();
    parts.visitors.closeAll(CLOSE_GOING_AWAY, "Relay restarting");
    parts.workers.closeAll(CLOSE_GOING_AWAY, "Relay restarting");
    shutdown.abort();
    await server.finished;
    await service.flush();
    await shared?.close();
    await engine.close();
  }
}
