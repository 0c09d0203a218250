/** Test helper, private to `lib/relay/`: a started chat service over a Deno KV store. */
import { Logger } from "../log.ts";
import { ChatService, type ChatServiceParts, chatServiceParts } from "./chat_service.ts";
import type { RelayConfig } from "./config.ts";
import { relayMetrics } from "./metrics.ts";
import type { ChatStore } from "./store/chat_store.ts";
import { kvStore } from "./store/kv_store.ts";

/** A started service and its parts; `close()` flushes it and closes the store. */
export interface TestService {
  service: ChatService;
  parts: ChatServiceParts;
  store: ChatStore;
  close(): Promise<void>;
}

/**
 * Starts a service over the KV store at `kvPath` (in memory by default), or over `store` when
 * given (a wrapped one, say), with quiet logs.
 */
export async function testService(
  config: RelayConfig,
  kvPath = ":memory:",
  given?: ChatStore,
): Promise<TestService> {
  const store = given ?? kvStore(await Deno.openKv(kvPath));
  const log = new Logger("test", "error", () => {});
  const metrics = relayMetrics({
    visitorSockets: () => 0,
    workerSockets: () => 0,
    openTurns: () => 0,
  });
  const parts = chatServiceParts(store, config, log, metrics);
  const service = new ChatService(parts);
  await service.start();
  return {
    service,
    parts,
    store,
    close: async () => {
      await service.flush();
      await store.close();
    },
  };
}
