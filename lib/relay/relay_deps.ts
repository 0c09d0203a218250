/** What the relay's routes and sockets are built from, wired once in `relay_app.ts`. */
import type { Logger } from "../log.ts";
import type { Auth } from "./auth.ts";
import type { ChatService, ChatServiceParts } from "./chat_service.ts";
import type { RelayConfig } from "./config.ts";
import type { Metrics } from "./metrics.ts";
import type { LogRing } from "./metrics_snapshot.ts";
import type { RelayLimits } from "./relay_limits.ts";
import type { RedisHealth } from "./redis/redis_connection.ts";
import type { VisitorHub } from "./visitor_hub.ts";
import type { WorkerHub } from "./worker_hub.ts";
import type { WorkerRegistry } from "./worker_registry.ts";

export interface RelayDeps {
  config: RelayConfig;
  log: Logger;
  service: ChatService;
  /** The visitor sockets, per chat (the service broadcasts to them too). */
  visitors: VisitorHub;
  /** The worker sockets. */
  workers: WorkerHub;
  /** Worker heartbeats and reports, for `/api/health`. */
  registry: WorkerRegistry;
  auth: Auth;
  metrics: Metrics;
  /** Rate limits and socket counts (`relayLimits()`: global on Redis, per relay on KV). */
  limits: RelayLimits;
  /** Whether the relay serves the page itself (WEB_DIR holds an index.html). */
  frontendServed: boolean;
  /** The last log lines, for `GET /api/metrics`. */
  recentLogs?: LogRing;
  /** The Redis store's connection state, for `/api/health` (absent on Deno KV). */
  storeHealth?: () => RedisHealth;
}

/** What `relayDeps()` takes beside the service and its parts. */
export type RelayDepsRest = Pick<
  RelayDeps,
  "auth" | "limits" | "frontendServed" | "recentLogs" | "storeHealth"
>;

/** The deps of a relay whose hubs, registry, config, log and metrics are its service's parts. */
export function relayDeps(
  service: ChatService,
  parts: ChatServiceParts,
  rest: RelayDepsRest,
): RelayDeps {
  const { config, log, metrics, visitors, workers, registry } = parts;
  return { config, log, metrics, service, visitors, workers, registry, ...rest };
}
