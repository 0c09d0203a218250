/**
 * terrarium-relay: the public VPS side (SPEC §1–§3). Parses config, opens the KV store,
 * serves the API, sockets and page, and shuts down gracefully on SIGTERM/SIGINT.
 *
 * Usage: relay.ts [--env-file=PATH]
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConfigError, envFileArg } from "./lib/env.ts";
import { Logger } from "./lib/log.ts";
import { Auth } from "./lib/relay/auth.ts";
import { ChatService, chatServiceParts } from "./lib/relay/chat_service.ts";
import { isRemoteKv, loadRelayConfig, type RelayConfig } from "./lib/relay/config.ts";
import { kvFileProblem } from "./lib/relay/kv_file_check.ts";
import { relayMetrics } from "./lib/relay/metrics.ts";
import { LogRing } from "./lib/relay/metrics_snapshot.ts";
import { relayApp } from "./lib/relay/relay_app.ts";
import { relayDeps } from "./lib/relay/relay_deps.ts";
import { relayLimits } from "./lib/relay/relay_limits.ts";
import type { RedisConnection } from "./lib/relay/redis/redis_connection.ts";
import { type RedisShared, redisShared } from "./lib/relay/redis/redis_shared.ts";
import { parseRedisUrl } from "./lib/relay/redis/redis_url.ts";
import type { ChatStore } from "./lib/relay/store/chat_store.ts";
import { kvStore } from "./lib/relay/store/kv_store.ts";
import { redisStore } from "./lib/relay/store/redis_store.ts";
import { CLOSE_GOING_AWAY } from "./lib/relay/_ws.ts";

const HOUSEKEEPING_MS = 1_000;
/** How long the relay waits for Redis at start before giving up (exit 1). */
const REDIS_CONNECT_TIMEOUT_MS = 30_000;
const RETENTION_EVERY_MS = 3_600_000;
/** Several relays: each reads the shared queue again this often, in case a note was lost. */
const RESYNC_EVERY_MS = 15_000;

/**
 * Opens the KV store, or explains in one line why it cannot (a read-only or full disk, a
 * path that is a directory or runs through a file, a damaged, foreign or empty file) and
 * returns the exit code: a local store that cannot open will not open on an automatic
 * restart either, so 78 (EX_CONFIG) keeps systemd from crash-looping (see the unit); a
 * remote store may come back, so 1.
 */
async function openKv(config: RelayConfig): Promise<Deno.Kv | number> {
  const remote = isRemoteKv(config.kvPath);
  try {
    if (!remote && config.kvPath !== ":memory:") {
      const dir = dirname(config.kvPath);
      try {
        mkdirSync(dir, { recursive: true });
      } catch (error) {
        // EEXIST from a recursive mkdir means a part of the path is a file.
        if ((error as { code?: string }).code !== "EEXIST") throw error;
        throw new Error(`"${dir}" is not a directory`, { cause: error });
      }
      // Deno KV would take a damaged store and panic on its first bad page, or an empty
      // file as a new store: judge the file first (issue 11, finding 8).
      const problem = kvFileProblem(config.kvPath);
      if (problem) throw new Error(problem);
    }
    return await Deno.openKv(config.kvPath);
  } catch (error) {
    const cause = (error as Error).message.split("\n")[0];
    // deno-lint-ignore no-console
    console.error(`terrarium-relay: Cannot open the KV store "${config.kvPath}": ${cause}`);
    return remote ? 1 : 78;
  }
}

/**
 * Opens the store `config` selects: Redis at `REDIS_URL` (several relays may share it), else
 * Deno KV at `KV_PATH`. Redis that does not answer within 30 s is exit code 1: it may come
 * back, so systemd may restart the relay. The Redis health is a `/metrics` gauge.
 */
async function openStore(
  config: RelayConfig,
  log: Logger,
): Promise<{ store: ChatStore; redis: RedisConnection | null } | number> {
  if (config.redisUrl === "") {
    const kv = await openKv(config);
    return typeof kv === "number" ? kv : { store: kvStore(kv), redis: null };
  }
  const endpoint = parseRedisUrl(config.redisUrl, config.redisPassword);
  // Loaded only here: a relay on Deno KV does not carry the Redis client (about 10 MiB of RSS).
  const { RedisConnection } = await import("./lib/relay/redis/redis_connection.ts");
  const redis = new RedisConnection(endpoint, { log });
  try {
    await redis.connect(REDIS_CONNECT_TIMEOUT_MS);
  } catch (error) {
    await redis.close();
    // deno-lint-ignore no-console
    console.error(
      `terrarium-relay: Cannot reach Redis at ${endpoint.netHost}: ${(error as Error).message}`,
    );
    return 1;
  }
  return { store: redisStore(redis), redis };
}

async function main(): Promise<number> {
  let config: RelayConfig;
  try {
    config = loadRelayConfig(envFileArg(Deno.args));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // deno-lint-ignore no-console
    console.error(`terrarium-relay: ${error.message}`);
    return 78; // EX_CONFIG: systemd will not hammer-restart a misconfigured unit (see the unit)
  }
  const recentLogs = new LogRing(50, [
    config.chatPassword,
    config.serviceToken,
    config.adminToken,
    config.hmacSecret,
  ]);
  const log = new Logger("relay", config.logLevel, (line) => {
    // deno-lint-ignore no-console
    console.log(line);
    recentLogs.push(line);
  });
  if (config.demoMode) {
    log.warn("demo mode: default secrets are accepted; do not expose this relay");
  }

  const opened = await openStore(config, log);
  if (typeof opened === "number") return opened;
  const { store, redis } = opened;
  const limits = relayLimits(config, redis);
  const auth = new Auth(config, log, { limits });
  // The gauges are read at scrape time, when `parts` and `service` exist.
  const metrics = relayMetrics({
    visitorSockets: () => parts.visitors.size,
    workerSockets: () => parts.workers.size,
    openTurns: () => service.openTurns,
    accessCodeDelayMs: () => auth.guard.delayMs(),
  });
  if (redis) {
    metrics.gauge(
      "terrarium_store_up",
      "1 while the store (Redis) answers, else 0",
      () => redis.health().up ? 1 : 0,
    );
    metrics.gauge(
      "terrarium_store_outages",
      "Times the Redis connection was lost",
      () => redis.health().outages,
    );
  }
  // On Redis the relay shares chats, queue and events with every relay on the same Redis.
  let shared: RedisShared | null = null;
  if (redis) {
    try {
      shared = await redisShared(redis, { log, metrics, timeoutMs: REDIS_CONNECT_TIMEOUT_MS });
    } catch (error) {
      // deno-lint-ignore no-console
      console.error(`terrarium-relay: Cannot subscribe on Redis: ${(error as Error).message}`);
      await store.close();
      return 1;
    }
  }
  const parts = chatServiceParts(store, config, log, metrics, shared?.parts);
  const service = new ChatService(parts);
  await service.start();
  const deps = relayDeps(service, parts, {
    auth,
    limits,
    frontendServed: config.webDir !== "" && existsSync(join(config.webDir, "index.html")),
    recentLogs,
    ...(redis ? { storeHealth: () => redis.health() } : {}),
  });
  if (!deps.frontendServed) log.info("no page to serve", { webDir: config.webDir });
  const app = relayApp(deps);

  const shutdown = new AbortController();
  const server = Deno.serve({
    hostname: config.hostname,
    port: config.port,
    signal: shutdown.signal,
    onListen: ({ hostname, port }) => {
      log.info("listening", {
        hostname,
        port,
        basePath: config.basePath,
        ...(redis ? { store: `redis ${redis.endpoint.netHost}` } : { kvPath: config.kvPath }),
      });
    },
  }, (req, info) => app.fetch(req, { remoteAddr: info.remoteAddr }));

  const housekeeping = setInterval(() => {
    // While Redis is away every sweep would fail (and log) once a second; the first sweep
    // after it is back hands out what expired meanwhile. Of several relays one sweeps.
    if (redis && !redis.up) return;
    const leads = shared ? shared.leader.leads() : Promise.resolve(true);
    leads.then((yes) => yes ? service.expireLeases() : undefined)
      .catch((error) => log.error("lease sweep failed", { error }));
  }, HOUSEKEEPING_MS);
  const resync = setInterval(() => {
    if (!service.shared || (redis && !redis.up)) return;
    service.resync().catch((error) => log.warn("queue resync failed", { error }));
  }, RESYNC_EVERY_MS);
  const retention = setInterval(() => {
    service.sweepRetention().catch((error) => log.error("retention sweep failed", { error }));
  }, RETENTION_EVERY_MS);
  service.sweepRetention().catch((error) => log.error("retention sweep failed", { error }));

  const stop = async (signal: string) => {
    log.info("shutting down", { signal });
    clearInterval(housekeeping);
    clearInterval(resync);
    clearInterval(retention);
    // 1001 Going Away: clients reconnect and resume from their last sequence number.
    parts.visitors.closeAll(CLOSE_GOING_AWAY, "Relay restarting");
    parts.workers.closeAll(CLOSE_GOING_AWAY, "Relay restarting");
    shutdown.abort();
    await server.finished;
    await service.flush();
    await shared?.close();
    await limits.close();
    await store.close();
    log.info("stopped");
  };
  const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
  const stopped = new Promise<void>((resolve) => {
    for (const signal of signals) {
      Deno.addSignalListener(signal, () => void stop(signal).then(resolve));
    }
  });
  await stopped;
  return 0;
}

if (import.meta.main) Deno.exit(await main());
