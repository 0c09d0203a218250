/**
 * The store's state in `/api/health` (issue 14: "Redis down ... `/api/health` and `/metrics`
 * show it"): while Redis does not answer, the chain's `relay` link says `degraded` — the
 * relay is up and keeps its sockets, but saves nothing until Redis is back.
 */
import type { HealthResponse } from "../../protocol.ts";
import type { RedisHealth } from "./redis_connection.ts";

/** `health` with the relay link marked degraded while the store is down. */
export function withStoreHealth(health: HealthResponse, store: RedisHealth): HealthResponse {
  if (store.up) return health;
  return {
    ...health,
    chain: health.chain.map((link) =>
      link.id === "relay"
        ? {
          ...link,
          status: "degraded" as const,
          detail: "Cannot reach its store (Redis); nothing can be saved until it is back",
        }
        : link
    ),
  };
}
