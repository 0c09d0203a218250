/**
 * What a relay on Redis shares with the other relays on it (issue 14), built once from the
 * store's connection: the chats' lock, the fanout (on a subscriber connection of its own)
 * and the leader of the once-only rounds. `relay.ts` and the in-process test relay wire it
 * the same way.
 */
import type { Logger } from "../../log.ts";
import type { SharedParts } from "../chat_service.ts";
import type { Metrics } from "../metrics.ts";
import { RedisOpenTurnCaps } from "../store/redis_open_turn_caps.ts";
import { RedisChatLock } from "./redis_chat_lock.ts";
import type { RedisConnection } from "./redis_connection.ts";
import { RedisFanout } from "./redis_fanout.ts";
import { RedisLeader } from "./redis_leader.ts";

/** The shared parts, and how to let go of them. */
export interface RedisShared {
  /** For `chatServiceParts()`. */
  parts: SharedParts;
  leader: RedisLeader;
  /** Closes the subscriber connection (after the service has stopped). */
  close(): Promise<void>;
}

/** Builds the shared parts on `redis` (connected); the subscriber connects within `timeoutMs`. */
export async function redisShared(
  redis: RedisConnection,
  deps: { log: Logger; metrics: Metrics; relayId?: string; timeoutMs?: number },
): Promise<RedisShared> {
  const relayId = deps.relayId ?? crypto.randomUUID();
  const subscriber = redis.duplicate();
  await subscriber.connect(deps.timeoutMs ?? 30_000);
  let fanout: RedisFanout | null = null;
  return {
    parts: {
      lock: new RedisChatLock(redis),
      caps: (limits) => new RedisOpenTurnCaps(redis, limits),
      fanout: (visitors, workers) =>
        fanout = new RedisFanout({
          commands: redis,
          subscriber,
          visitors,
          workers,
          metrics: deps.metrics,
          log: deps.log,
          relayId,
        }),
    },
    leader: new RedisLeader(redis, relayId),
    close: async () => {
      await fanout?.close();
      await subscriber.close();
    },
  };
}
