/**
 * How the relay's events reach the sockets that want them: the visitor sockets of a chat and
 * the worker sockets. `LocalFanout` is one relay alone (Deno KV): every socket is in this
 * process. `RedisFanout` (`redis/redis_fanout.ts`) is several relays on one Redis: a chat's
 * events go through the Redis event bus to the relays that hold its sockets, and worker
 * events, turn changes and site words reach every relay on one channel (issue 14).
 */
import type { AssistantChunkEvent, ChatEvent, WorkerServerEvent } from "../protocol.ts";
import type { Metrics } from "./metrics.ts";
import type { VisitorHub } from "./visitor_hub.ts";
import type { WorkerHub } from "./worker_hub.ts";

/** What other relays tell this one (handled by the chat service). */
export interface FanoutHandlers {
  /** Another relay changed turn `turnId`: read it again. */
  turnChanged(turnId: string): Promise<void>;
  /** Another relay stored new site words. */
  siteChanged(): Promise<void>;
  /** The link to the other relays was down and is back: what changed meanwhile is unknown. */
  resync(): Promise<void>;
}

export interface Fanout {
  /** Whether other relays share the store (and so change it behind this relay's back). */
  readonly shared: boolean;
  /** Takes what other relays say; call once before serving. */
  listen(handlers: FanoutHandlers): Promise<void>;
  /** Delivers a chat event to its visitor sockets on every relay; call in the chat's lane. */
  chat(event: ChatEvent): Promise<void>;
  /**
   * `chat()` done before it returns, where delivery needs no I/O (a relay alone: every socket
   * is in this process); absent where it does. Call in the chat's lane, or where the lane is idle.
   */
  chatNow?(event: ChatEvent): void;
  /**
   * Delivers `event` like `chat()` only if its `seq` directly follows the chat's last number
   * and no relay holds the chat's lock, taking that number: a chunk's one round trip on
   * several relays. False: nothing was numbered or sent (a relay alone never takes it).
   */
  publishNext(event: ChatEvent): Promise<boolean>;
  /**
   * Makes sure a stored event went out (a write whose answer was lost may have been stored and
   * never sent): sends it if it still fits in order, else has the chat's sockets on every
   * relay reconnect and resume from the store. Call in the chat's lane.
   */
  ensurePublished(event: ChatEvent): Promise<void>;
  /** Delivers a late `done` to the original page's sockets only (`legacy_frames.ts`). */
  legacyDone(event: AssistantChunkEvent): void;
  /** Sends an event to every worker socket on every relay. */
  workers(event: WorkerServerEvent): void;
  /** Tells the other relays that turn `turnId` changed. */
  turnChanged(turnId: string): void;
  /** Tells the other relays that the site words changed. */
  siteChanged(): void;
  /** Resolves once this relay receives `chatId`'s live events (a socket is about to replay). */
  watch(chatId: string): Promise<void>;
  /**
   * The chunk events of `chatId` after `afterSeq` that other relays published, in order, or
   * null when they are not all known (only a shared fanout keeps them).
   */
  chunksAfter(chatId: string, afterSeq: number): Promise<AssistantChunkEvent[] | null>;
  /** Stops listening. */
  close(): Promise<void>;
}

/** Counts a chunk's deliveries (`terrarium_deliveries_total` counts sockets per chunk). */
export function countDeliveries(metrics: Metrics, event: ChatEvent, sockets: number): void {
  if (event.type !== "assistantChunk") return;
  metrics.inc("terrarium_chunks_total");
  metrics.inc("terrarium_deliveries_total", undefined, sockets);
}

/** One relay alone: every socket is in this process. */
export class LocalFanout implements Fanout {
  readonly shared = false;
  readonly #visitors: VisitorHub;
  readonly #workers: WorkerHub;
  readonly #metrics: Metrics;

  constructor(visitors: VisitorHub, workers: WorkerHub, metrics: Metrics) {
    this.#visitors = visitors;
    this.#workers = workers;
    this.#metrics = metrics;
  }

  async listen(): Promise<void> {}

  chat(event: ChatEvent): Promise<void> {
    this.chatNow(event);
    return Promise.resolve();
  }

  chatNow(event: ChatEvent): void {
    countDeliveries(this.#metrics, event, this.#visitors.broadcast(event));
  }

  publishNext(): Promise<boolean> {
    return Promise.resolve(false);
  }

  /** A relay alone sends an event once its write committed: nothing can be missing. */
  async ensurePublished(): Promise<void> {}

  legacyDone(event: AssistantChunkEvent): void {
    this.#visitors.broadcast(event, true);
  }

  workers(event: WorkerServerEvent): void {
    this.#workers.broadcast(event);
  }

  turnChanged(): void {}

  siteChanged(): void {}

  async watch(): Promise<void> {}

  chunksAfter(): Promise<null> {
    return Promise.resolve(null);
  }

  async close(): Promise<void> {}
}
