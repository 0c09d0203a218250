/**
 * The fan-out of several relays on one Redis (issue 14, after Centrifugo's Redis engine).
 *
 * Chat events: the relay that emits one publishes it on the chat's event bus
 * (`redis_event_bus.ts`: a capped history plus PUBLISH, in `seq` order because the chat's
 * lane holds the cross-relay lock), and every relay that holds a socket of the chat is
 * subscribed and delivers it to them — the emitting relay too, so each socket gets each
 * event once, in order, whichever relay emitted it. A relay subscribes when a chat's first
 * socket arrives (before its replay is read, so nothing falls between the two) and stops
 * when the last one leaves.
 *
 * Everything else goes on one relay channel: worker events (a visitor's cancel on relay A
 * reaches the worker connected to relay B), changed turns (each relay keeps the open turns
 * in memory and reads a changed one again), new site words and the original page's late
 * `done`. The channel is handled in order, so a turn is read again before the worker hears of
 * it. PUB/SUB is at most once: after a lost subscriber connection the service reloads.
 */
import { CLOSE_TRY_LATER } from "../../close_codes.ts";
import type { Logger } from "../../log.ts";
import type { AssistantChunkEvent, ChatEvent, WorkerServerEvent } from "../../protocol.ts";
import { countDeliveries, type Fanout, type FanoutHandlers } from "../fanout.ts";
import type { Metrics } from "../metrics.ts";
import type { VisitorHub } from "../visitor_hub.ts";
import type { WorkerHub } from "../worker_hub.ts";
import type { RedisConnection } from "./redis_connection.ts";
import { redisSeqKey } from "../store/redis_store.ts";
import { chatLockKey } from "./redis_chat_lock.ts";
import { RedisEventBus } from "./redis_event_bus.ts";

/** What a relay says to the others on the relay channel. */
type RelayNote =
  | { from: string; kind: "worker"; event: WorkerServerEvent }
  | { from: string; kind: "turn"; turnId: string }
  | { from: string; kind: "site" }
  | { from: string; kind: "resume"; chatId: string }
  | { from: string; kind: "legacy"; event: AssistantChunkEvent };

/** What a `RedisFanout` is built from. */
export interface RedisFanoutDeps {
  /** The command connection (the store's). */
  commands: RedisConnection;
  /** A connection of its own for subscriptions. */
  subscriber: RedisConnection;
  visitors: VisitorHub;
  workers: WorkerHub;
  metrics: Metrics;
  log: Logger;
  /** This relay's name on the channel (its own notes are not handled twice). */
  relayId: string;
  /** The store's key prefix. @default "terrarium:" */
  prefix?: string;
}

/** One chat this relay is subscribed to. */
interface Watch {
  ready: Promise<() => Promise<void>>;
}

export class RedisFanout implements Fanout {
  readonly shared = true;
  readonly #deps: RedisFanoutDeps;
  readonly #bus: RedisEventBus<ChatEvent>;
  readonly #channel: string;
  readonly #prefix: string;
  #handlers: FanoutHandlers | null = null;
  #watches = new Map<string, Watch>();
  /** The relay channel's notes are handled one after another, in order. */
  #inbox: Promise<void> = Promise.resolve();
  /** A connection was lost since the last reread of the queue. */
  #resyncOwed = false;

  constructor(deps: RedisFanoutDeps) {
    this.#deps = deps;
    const prefix = deps.prefix ?? "terrarium:";
    this.#bus = new RedisEventBus<ChatEvent>(deps.commands, deps.subscriber, { prefix });
    this.#channel = `${prefix}relay_notes`;
    this.#prefix = prefix;
    // The chat's last socket left: stop receiving its events.
    deps.visitors.onChatEmpty = (chatId) => this.#unwatch(chatId);
  }

  async listen(handlers: FanoutHandlers): Promise<void> {
    this.#handlers = handlers;
    // Notes sent while this relay was away are lost: once both connections are back (the
    // reread needs the command one), read the queue and site words again.
    const { subscriber, commands } = this.#deps;
    for (const client of new Set([subscriber.client, commands.client])) {
      client.on("error", () => this.#resyncOwed = true);
      client.on("reconnecting", () => this.#resyncOwed = true);
      client.on("ready", () => this.#handle(() => this.#resync(handlers)));
    }
    await this.#deps.subscriber.run((c) =>
      c.subscribe(this.#channel, (message) => this.#onNote(message))
    );
  }

  async chat(event: ChatEvent): Promise<void> {
    try {
      await this.#bus.publish(event.chatId, event);
    } catch (error) {
      // Already stored: sockets that missed it get it from the store when they reconnect.
      this.#deps.log.warn("event not published", { chatId: event.chatId, error });
    }
  }

  async publishNext(event: ChatEvent): Promise<boolean> {
    return await this.#bus.publishNext(event.chatId, event, {
      seq: redisSeqKey(this.#prefix, event.chatId),
      lock: chatLockKey(this.#prefix, event.chatId),
    });
  }

  async ensurePublished(event: ChatEvent): Promise<void> {
    if (await this.#bus.has(event.chatId, event.seq)) return;
    if (await this.#bus.publish(event.chatId, event)) return;
    // Later events went out already: the chat's sockets resume from the store, which has it.
    this.#deps.log.warn("event sent out of order; the chat's sockets resume", {
      chatId: event.chatId,
    });
    this.#resume(event.chatId);
    this.#note({ from: this.#deps.relayId, kind: "resume", chatId: event.chatId });
  }

  legacyDone(event: AssistantChunkEvent): void {
    this.#deps.visitors.broadcast(event, true);
    this.#note({ from: this.#deps.relayId, kind: "legacy", event });
  }

  workers(event: WorkerServerEvent): void {
    this.#deps.workers.broadcast(event);
    this.#note({ from: this.#deps.relayId, kind: "worker", event });
  }

  turnChanged(turnId: string): void {
    this.#note({ from: this.#deps.relayId, kind: "turn", turnId });
  }

  siteChanged(): void {
    this.#note({ from: this.#deps.relayId, kind: "site" });
  }

  async watch(chatId: string): Promise<void> {
    let watch = this.#watches.get(chatId);
    if (!watch) {
      watch = { ready: this.#subscribe(chatId) };
      this.#watches.set(chatId, watch);
      const current = watch;
      // A failed subscribe is not kept: the next socket tries again.
      current.ready.catch(() => {
        if (this.#watches.get(chatId) === current) this.#watches.delete(chatId);
      });
    }
    await watch.ready;
  }

  async chunksAfter(chatId: string, afterSeq: number): Promise<AssistantChunkEvent[] | null> {
    const { events, complete } = await this.#bus.history(chatId, afterSeq);
    if (!complete) return null;
    return events.filter((e): e is AssistantChunkEvent => e.type === "assistantChunk");
  }

  async close(): Promise<void> {
    const watches = [...this.#watches.values()];
    this.#watches.clear();
    await Promise.allSettled(watches.map(async (w) => (await w.ready)()));
  }

  async #subscribe(chatId: string): Promise<() => Promise<void>> {
    // From the newest published event on: what came before is the replay's (from the store),
    // and the bus fills anything published between this read and the subscription.
    const after = await this.#bus.lastSeq(chatId);
    const watch = () => this.#watches.get(chatId);
    const mine = watch();
    return await this.#bus.subscribe(chatId, after, {
      deliver: (event) => {
        if (watch() !== mine) return; // stopped: a newer subscription delivers now
        countDeliveries(this.#deps.metrics, event, this.#deps.visitors.broadcast(event));
      },
      gap: () => {
        if (watch() !== mine) return;
        // The capped history lost events these sockets never got.
        this.#resume(chatId);
      },
    });
  }

  /** Has the chat's sockets on this relay reconnect and resume from their last `seq`. */
  #resume(chatId: string): void {
    this.#deps.visitors.closeChat(chatId, CLOSE_TRY_LATER, "Missed events; reconnect");
  }

  #unwatch(chatId: string): void {
    const watch = this.#watches.get(chatId);
    if (!watch) return;
    this.#watches.delete(chatId);
    watch.ready.then((stop) => stop()).catch(() => {});
  }

  #note(note: RelayNote): void {
    this.#deps.commands.command(["PUBLISH", this.#channel, JSON.stringify(note)]).catch((error) =>
      this.#deps.log.warn("relay note not sent", { kind: note.kind, error })
    );
  }

  #onNote(message: string): void {
    let note: RelayNote;
    try {
      note = JSON.parse(message) as RelayNote;
    } catch {
      return;
    }
    if (note.from === this.#deps.relayId) return;
    const handlers = this.#handlers;
    if (!handlers) return;
    this.#handle(async () => {
      switch (note.kind) {
        case "worker":
          this.#deps.workers.broadcast(note.event);
          break;
        case "turn":
          await handlers.turnChanged(note.turnId);
          break;
        case "site":
          await handlers.siteChanged();
          break;
        case "legacy":
          this.#deps.visitors.broadcast(note.event, true);
          break;
        case "resume":
          this.#resume(note.chatId);
          break;
      }
    });
  }

  async #resync(handlers: FanoutHandlers): Promise<void> {
    if (!this.#resyncOwed || !this.#deps.subscriber.up || !this.#deps.commands.up) return;
    this.#resyncOwed = false;
    try {
      await handlers.resync();
    } catch (error) {
      this.#resyncOwed = true; // the next connection back, or the service's round, tries again
      throw error;
    }
  }

  #handle(task: () => Promise<void>): void {
    this.#inbox = this.#inbox.then(task).catch((error) =>
      this.#deps.log.warn("relay note not handled", { error })
    );
  }
}
