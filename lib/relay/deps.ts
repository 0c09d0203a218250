/** What the relay's routes and sockets are built from, wired once in `relay_app.ts`. */
import type { Logger } from "../log.ts";
import type { Auth } from "./auth.ts";
import type { ChatService } from "./chat_service.ts";
import type { RelayConfig } from "./config.ts";
import type { Metrics } from "./metrics.ts";
import type { LogRing } from "./metrics_snapshot.ts";
import type { RateLimiter } from "./rate_limiter.ts";

export interface RelayDeps {
  config: RelayConfig;
  log: Logger;
  service: ChatService;
  auth: Auth;
  metrics: Metrics;
  ipLimiter: RateLimiter;
  chatLimiter: RateLimiter;
  /** Whether the relay serves the page itself (WEB_DIR holds an index.html). */
  frontendServed: boolean;
  /** The last log lines, for `GET /api/metrics`. */
  recentLogs?: LogRing;
}
