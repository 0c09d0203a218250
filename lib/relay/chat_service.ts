/**
 * The relay's chat logic, shared by the HTTP routes and both sockets: store a visitor
 * message and queue its turn, stream chunks, store the reply exactly once, keep worker
 * states and queue positions, and replay what a reconnecting visitor missed.
 *
 * Events of one chat are emitted in sequence-number order: everything that allocates a
 * number and emits runs in that chat's lane (a promise chain, and on several relays also a
 * lock in Redis), so a live socket never sees number 7 before number 6.
 *
 * On several relays (issue 14) the events go out through `RedisFanout`, and what this relay
 * keeps in memory — the open turns, the partial answer, the site words — is a copy that the
 * other relays' notes keep current; every write is still judged by the store.
 */
import { newId } from "../id.ts";
import type { Logger } from "../log.ts";
import {
  type AgentChunkRequest,
  type AgentReplyRequest,
  type AssistantChunkEvent,
  type ChatEvent,
  type ChatMessage,
  DEFAULT_SITE_PROFILE,
  type RenewResponse,
  type SiteProfile,
  type Turn,
  type TurnFailRequest,
  type WorkerStateEvent,
  type WorkerStateName,
} from "../protocol.ts";
import { ChatLanes } from "./chat_lanes.ts";
import { ChatSeqs } from "./chat_seqs.ts";
import { ChunkPath } from "./chunk_path.ts";
import { type Fanout, LocalFanout } from "./fanout.ts";
import { clientKey } from "./client_key.ts";
import type { RelayConfig } from "./config.ts";
import { RelayError } from "./errors.ts";
import type { Metrics } from "./metrics.ts";
import { OpenTurnCaps, type TurnCaps } from "./open_turn_caps.ts";
import { PartialAnswers } from "./partial_answers.ts";
import type { ChatLock } from "./redis/redis_chat_lock.ts";
import { QueueAnnouncer, queueDetail } from "./queue_announcer.ts";
import { TurnFailures } from "./turn_failures.ts";
import { type PostedReply, TurnReplies } from "./turn_replies.ts";
import type { ChatRecord, ChatStore } from "./store/chat_store.ts";
import { toWireTurn, TurnQueue, type TurnRecord } from "./turn_queue.ts";
import { VisitorHub } from "./visitor_hub.ts";
import { WorkerHub } from "./worker_hub.ts";
import { WorkerRegistry } from "./worker_registry.ts";

/**
 * What a chat service is built from. The hubs and the registry are shared with the socket
 * and route modules, which use them directly (`relay_app.ts` wiring).
 */
export interface ChatServiceParts {
  store: ChatStore;
  config: RelayConfig;
  log: Logger;
  metrics: Metrics;
  visitors: VisitorHub;
  workers: WorkerHub;
  registry: WorkerRegistry;
  /** How events reach sockets: here alone, or through Redis to every relay. */
  fanout: Fanout;
  /** The chats' cross-relay lock (null for a relay alone). */
  lock: ChatLock | null;
  /** The open-turn caps across relays (null: counted from this relay's queue). */
  caps: SharedParts["caps"] | null;
}

/** How several relays share their events (absent: this relay is alone on its store). */
export interface SharedParts {
  fanout: (visitors: VisitorHub, workers: WorkerHub) => Fanout;
  lock: ChatLock;
  /** The open-turn caps counted across relays. */
  caps: (limits: { perClient: number; total: number }) => TurnCaps;
}

/**
 * The usual parts over `store`: hubs sized by `config`, a registry on the same store, and
 * the fanout `shared` builds (a relay alone when absent).
 */
export function chatServiceParts(
  store: ChatStore,
  config: RelayConfig,
  log: Logger,
  metrics: Metrics,
  shared?: SharedParts,
): ChatServiceParts {
  const visitors = new VisitorHub({
    maxBufferedBytes: config.maxSocketBufferBytes,
    maxSocketsPerChat: config.maxSocketsPerChat,
    maxSocketsPerIp: config.maxSocketsPerIp,
    maxPendingSockets: config.maxPendingSockets,
    onDrop: (peer, reason) => {
      metrics.inc("terrarium_sockets_dropped_total");
      log.warn("visitor socket dropped", { ip: peer.ip, reason });
    },
  });
  const registry = new WorkerRegistry(store, config.workerStaleThresholdMs);
  // A worker's acks carry whole replies: room for a few bodies beyond the visitor cap.
  const workers = new WorkerHub(
    Math.max(config.maxSocketBufferBytes, 4 * config.bodySizeLimitBytes),
  );
  const fanout = shared?.fanout(visitors, workers) ?? new LocalFanout(visitors, workers, metrics);
  return {
    store,
    config,
    log,
    metrics,
    visitors,
    workers,
    registry,
    fanout,
    lock: shared?.lock ?? null,
    caps: shared?.caps ?? null,
  };
}

/** A claim that found nothing reloads the shared queue at most this often (ms). */
const RELOAD_AT_MOST_EVERY_MS = 250;

export class ChatService {
  readonly #fanout: Fanout;
  readonly #registry: WorkerRegistry;
  readonly #store: ChatStore;
  readonly #queue: TurnQueue;
  readonly #config: RelayConfig;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #lanes: ChatLanes;
  readonly #seqs: ChatSeqs;
  readonly #chunks: ChunkPath;
  readonly #partials: PartialAnswers;
  readonly #caps: TurnCaps;
  readonly #positions: QueueAnnouncer;
  /** The operator's site words, read once at start and on every publish. */
  #site: SiteProfile | null = null;
  readonly #failures: TurnFailures;
  readonly #replies: TurnReplies;
  #reloadedAtMs = 0;

  constructor(parts: ChatServiceParts) {
    const { store, config, log, metrics } = parts;
    this.#config = config;
    this.#log = log;
    this.#metrics = metrics;
    this.#store = store;
    this.#fanout = parts.fanout;
    this.#registry = parts.registry;
    this.#lanes = new ChatLanes(parts.lock);
    this.#seqs = new ChatSeqs(store, parts.fanout.shared);
    this.#partials = new PartialAnswers(store, log, parts.fanout);
    this.#queue = new TurnQueue(
      store,
      config.turnLeaseMs,
      (turnId) => parts.fanout.turnChanged(turnId),
    );
    this.#chunks = new ChunkPath({
      lanes: this.#lanes,
      lock: parts.lock,
      queue: this.#queue,
      partials: this.#partials,
      fanout: parts.fanout,
      seqs: this.#seqs,
    });
    this.#positions = new QueueAnnouncer({
      positions: () => this.#queue.positions(),
      announce: (chatId, position) => this.#announcePosition(chatId, position),
      log,
    });
    this.#failures = new TurnFailures({
      store,
      queue: this.#queue,
      fanout: this.#fanout,
      lanes: this.#lanes,
      partials: this.#partials,
      log,
      metrics,
      maxPendingTurnsPerChat: config.maxPendingTurnsPerChat,
      setStateInLane: (chatId, state, detail, about) =>
        this.#setStateInLane(chatId, state, detail, undefined, about),
      requeued: (chatId) => {
        this.#positions.forget(chatId);
        void this.#positions.announce();
      },
    });
    this.#replies = new TurnReplies({
      store,
      queue: this.#queue,
      fanout: this.#fanout,
      lanes: this.#lanes,
      seqs: this.#seqs,
      partials: this.#partials,
      metrics,
      setStateInLane: (chatId, state, detail) => this.#setStateInLane(chatId, state, detail),
      answered: () => void this.#positions.announce(),
    });
    const limits = { perClient: config.maxOpenTurnsPerClient, total: config.maxOpenTurns };
    this.#caps = parts.caps?.(limits) ?? new OpenTurnCaps(
      limits,
      { total: () => this.#queue.size, ofClient: (key) => this.#queue.openTurnsFromClient(key) },
    );
  }

  /** Loads queue and worker state from the store; call once before serving. */
  async start(): Promise<void> {
    await this.#fanout.listen({
      turnChanged: (turnId) => this.#queue.refresh(turnId),
      siteChanged: async () => {
        this.#site = await this.#store.getSiteProfile();
      },
      resync: () => this.resync(),
    });
    const open = await this.#queue.load();
    await this.#registry.load();
    this.#site = await this.#store.getSiteProfile();
    this.#log.info("store loaded", { openTurns: open });
    void this.#positions.announce();
  }

  /**
   * Reads the open turns and the site words again: after the link to the other relays was
   * lost, and now and then as a safety net, since their notes are sent at most once.
   */
  async resync(): Promise<void> {
    await this.#queue.load();
    this.#site = await this.#store.getSiteProfile();
  }

  /** Whether other relays share this relay's store (and change it behind its back). */
  get shared(): boolean {
    return this.#fanout.shared;
  }

  /** Number of open turns (pending or being answered). */
  get openTurns(): number {
    return this.#queue.size;
  }

  /** The stored chat record of `chatId`, or null. */
  getChat(chatId: string): Promise<ChatRecord | null> {
    return this.#store.getChat(chatId);
  }

  /**
   * Every chat with its messages (the admin export), one at a time so a large export does
   * not sit in memory; `include` picks the chats by their record before messages are read.
   */
  async *transcripts(
    include: (chat: ChatRecord) => boolean,
  ): AsyncGenerator<ChatRecord & { messages: ChatMessage[] }> {
    for await (const chat of this.#store.listChats()) {
      if (!include(chat)) continue;
      yield { ...chat, messages: await this.#store.listMessages(chat.id) };
    }
  }

  // -------------------------------------------------------------------------------------
  // Visitor side

  /**
   * Stores a visitor message, opens its turn and tells the workers. `client.ip` goes into
   * the chat record; `client.key` (default `clientKey(ip)`) counts toward the open-turn caps.
   */
  async postVisitorMessage(
    chatId: string,
    content: string,
    client: { ip: string; key?: string; userAgent: string },
  ): Promise<ChatMessage> {
    const key = client.key ?? clientKey(client.ip);
    const release = await this.#caps.reserve(key);
    try {
      return await this.#storeVisitorMessage(chatId, content, client, key);
    } finally {
      void release();
    }
  }

  #storeVisitorMessage(
    chatId: string,
    content: string,
    client: { ip: string; userAgent: string },
    key: string,
  ): Promise<ChatMessage> {
    return this.#lanes.run(chatId, async () => {
      if (this.#queue.openTurnsOf(chatId).length >= this.#config.maxPendingTurnsPerChat) {
        throw new RelayError(
          "too_many_pending",
          "Terra has not answered your earlier messages yet; wait for a reply first.",
          { retryAfterSeconds: 5 },
        );
      }
      const now = new Date();
      const { seq } = await this.#seqs.next(chatId);
      const message: ChatMessage = {
        id: newId(),
        chatId,
        sender: "Visitor",
        content,
        createdAt: now.toISOString(),
        seq,
      };
      const existing = await this.#store.getChat(chatId);
      const chat: ChatRecord = {
        id: chatId,
        createdAt: existing?.createdAt ?? message.createdAt,
        lastActivityAt: message.createdAt,
        clientIp: client.ip,
        userAgent: client.userAgent.slice(0, 512),
      };
      await this.#queue.enqueue(
        { ...TurnQueue.newTurn(chatId, message.id, now.getTime(), key), messageSeq: seq },
        chat,
        message,
      );
      this.#metrics.inc("terrarium_messages_total", { sender: "Visitor" });
      await this.#fanout.chat({ type: "message", ...message });
      this.#fanout.workers({
        type: "chat_activity",
        chatId,
        messageId: message.id,
        emittedAt: now.toISOString(),
      });
      void this.#positions.announce();
      return message;
    });
  }

  /** A chat's messages after `afterSeq`, oldest first. */
  listMessages(chatId: string, afterSeq = 0, limit?: number): Promise<ChatMessage[]> {
    return this.#store.listMessages(chatId, afterSeq, limit);
  }

  /** The chat's current worker state (idle when nothing happened yet). */
  async getWorkerState(chatId: string): Promise<WorkerStateEvent> {
    return await this.#store.getWorkerState(chatId) ?? {
      type: "workerState",
      chatId,
      state: "idle",
      detail: "",
      updatedAt: new Date(0).toISOString(),
      seq: 0,
    };
  }

  /**
   * The visitor stops the answer: a waiting turn is dropped; a turn being answered is
   * flagged and the workers are told, and the worker posts what it has as a stopped reply.
   */
  async cancel(chatId: string): Promise<{ cancelled: boolean }> {
    const turn = this.#queue.currentTurn(chatId);
    if (!turn) return { cancelled: false };
    if (turn.status === "pending") {
      const closed = await this.#lanes.run(
        chatId,
        () => this.#queue.close(turn.id, "cancelled", null, {}),
      );
      if (!closed) return { cancelled: false };
      this.#metrics.inc("terrarium_turns_total", { transition: "cancelled" });
      await this.setWorkerState(chatId, "idle", "Stopped before Terra started");
      void this.#positions.announce();
      return { cancelled: true };
    }
    const flagged = await this.#queue.requestCancel(turn.id);
    if (!flagged) return { cancelled: false };
    this.#fanout.workers({
      type: "cancel",
      chatId,
      turnId: turn.id,
      emittedAt: new Date().toISOString(),
    });
    await this.setWorkerState(chatId, "processing", "Stopping…");
    return { cancelled: true };
  }

  /**
   * The visitor retries a message whose turn failed: the failure is cleared and the turn
   * waits in the queue again (`turn_failures.ts`).
   */
  async retry(chatId: string, messageId: string, key: string): Promise<void> {
    // A re-opened turn is an open turn again: it counts toward the same caps as a message.
    const release = await this.#caps.reserve(key);
    try {
      await this.#failures.retry(chatId, messageId, key);
    } finally {
      void release();
    }
  }

  /** The operator's site words, or the built-in defaults before a worker published any. */
  siteProfile(): SiteProfile {
    return this.#site ?? DEFAULT_SITE_PROFILE;
  }

  /** Stores the site words a worker publishes. */
  async publishSite(profile: SiteProfile): Promise<void> {
    await this.#store.setSiteProfile(profile);
    this.#site = profile;
    this.#fanout.siteChanged();
  }

  /** The original worker's `done` after its reply: the original page's sockets still get it. */
  lateDone(chatId: string): void {
    this.#fanout.legacyDone({
      type: "assistantChunk",
      chatId,
      content: "",
      done: true,
      emittedAt: new Date().toISOString(),
      seq: 0,
      kind: "answer",
      offset: 0,
      turnId: null,
    });
  }

  /**
   * The events a visitor with last sequence number `since` missed, in order: messages,
   * the current worker state and a snapshot of the answer being streamed. Runs in the
   * chat's lane so nothing is emitted between reading and `afterReplay`.
   */
  async replay<T>(
    chatId: string,
    since: number,
    afterReplay: (events: ChatEvent[]) => T,
  ): Promise<T> {
    // Receiving the chat's live events before the replay is read: nothing falls between.
    await this.#fanout.watch(chatId);
    return await this.#lanes.run(chatId, async () => {
      const events: ChatEvent[] = (await this.#store.listMessages(chatId, since)).map((m) => ({
        type: "message" as const,
        ...m,
      }));
      const state = await this.#store.getWorkerState(chatId);
      if (state && state.seq > since) events.push(state);
      events.push(
        ...await this.#partials.snapshot(
          chatId,
          since,
          () => this.#queue.currentTurn(chatId)?.id ?? null,
        ),
      );
      events.sort((a, b) => a.seq - b.seq);
      return afterReplay(events);
    });
  }

  // -------------------------------------------------------------------------------------
  // Worker side

  /** Chats with a turn a worker may claim now. */
  openChats(): string[] {
    return this.#queue.claimableChats();
  }

  /** Leases the next turn (of `chatId`, if given) to `workerId`. */
  async claim(workerId: string, chatId?: string): Promise<Turn | null> {
    let turn = await this.#queue.claim(workerId, chatId);
    if (
      !turn && this.#fanout.shared && Date.now() - this.#reloadedAtMs >= RELOAD_AT_MOST_EVERY_MS
    ) {
      // Another relay's note may not have arrived yet: look at the queue in the store.
      this.#reloadedAtMs = Date.now();
      await this.#queue.load();
      turn = await this.#queue.claim(workerId, chatId);
    }
    if (!turn) return null;
    this.#metrics.inc("terrarium_turns_total", { transition: "claimed" });
    this.#positions.forget(turn.chatId);
    this.#log.info("turn claimed", {
      chatId: turn.chatId,
      turnId: turn.id,
      workerId,
      attempt: turn.attempt,
    });
    // A new attempt streams from the start: forget a dead worker's partial answer.
    await this.#lanes.run(turn.chatId, () => this.#partials.drop(turn.chatId));
    await this.setWorkerState(turn.chatId, "processing", "Terra is reading your message");
    void this.#positions.announce();
    return toWireTurn(turn);
  }

  /** Extends a lease; tells the worker whether the visitor asked to stop. */
  async renew(turnId: string, leaseId: string): Promise<RenewResponse> {
    const turn = await this.#queue.renew(turnId, leaseId);
    return {
      leaseExpiresAt: new Date(turn.leaseExpiresAtMs).toISOString(),
      cancelRequested: turn.cancelRequested,
    };
  }

  /** Gives a turn back to the queue and offers it to the workers again. */
  async release(turnId: string, leaseId: string): Promise<void> {
    const turn = await this.#queue.release(turnId, leaseId);
    this.#metrics.inc("terrarium_turns_total", { transition: "released" });
    // A turn the visitor stopped is finished as stopped, not offered to another worker.
    if (turn.cancelRequested) await this.#finishStopped(turn);
    else await this.#requeued(turn, "Waiting for Terra");
  }

  /** Fans one streamed chunk out; a late chunk for a closed turn is ignored (null). */
  postChunk(chatId: string, chunk: AgentChunkRequest): Promise<AssistantChunkEvent | null> {
    try {
      const now = this.#chunks.postNow(chatId, chunk);
      if (now !== undefined) return Promise.resolve(now);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#chunks.post(chatId, chunk);
  }

  /**
   * `postChunk()` done before it returns when it can be without waiting (a relay alone, nothing
   * else of the chat under way: `ChunkPath.postNow()`); undefined when not (nothing was done:
   * call `postChunk()`). Throws what `postChunk()` rejects with.
   */
  postChunkNow(chatId: string, chunk: AgentChunkRequest): AssistantChunkEvent | null | undefined {
    return this.#chunks.postNow(chatId, chunk);
  }

  /**
   * Stores Terra's reply once per visitor message: a repeated post (a retry, or a second
   * worker after a lease expired) returns the stored reply with `duplicate: true`.
   */
  postReply(chatId: string, reply: AgentReplyRequest): Promise<PostedReply> {
    return this.#replies.post(chatId, reply);
  }

  /**
   * A worker reports that the turn failed: kept on the visitor message, never stored as
   * Terra's words (`turn_failures.ts`). A repeated report is a no-op.
   */
  failTurn(
    turnId: string,
    report: TurnFailRequest,
    chatId?: string,
  ): Promise<{ ok: true; duplicate: boolean }> {
    return this.#failures.fail(turnId, report, chatId);
  }

  /** Sets and broadcasts a chat's worker state. */
  setWorkerState(
    chatId: string,
    state: WorkerStateName,
    detail = "",
    queuePosition?: number,
  ): Promise<WorkerStateEvent> {
    return this.#lanes.run(
      chatId,
      () => this.#setStateInLane(chatId, state, detail, queuePosition),
    );
  }

  // -------------------------------------------------------------------------------------
  // Housekeeping

  /** Handles leases that ran out: re-offer the turn, or finish a stopped one. */
  async expireLeases(nowMs = Date.now()): Promise<void> {
    for (let turn of this.#queue.takeExpired(nowMs)) {
      if (this.#fanout.shared) {
        // Renewed through another relay, maybe: judge by the store's copy.
        await this.#queue.refresh(turn.id, nowMs);
        const current = await this.#queue.get(turn.id);
        if (current?.status !== "leased" || current.leaseExpiresAtMs > nowMs) continue;
        turn = current;
      }
      this.#metrics.inc("terrarium_turns_total", { transition: "expired" });
      this.#log.warn("lease expired", {
        chatId: turn.chatId,
        turnId: turn.id,
        workerId: turn.workerId,
      });
      if (turn.cancelRequested) {
        await this.#finishStopped(turn);
      } else {
        await this.#requeued(turn, "The worker stopped responding; waiting for another");
      }
    }
  }

  /** Deletes chats idle for longer than `CHAT_RETENTION_DAYS`; returns how many. */
  async sweepRetention(nowMs = Date.now()): Promise<number> {
    if (this.#config.chatRetentionDays <= 0) return 0;
    const cutoff = nowMs - this.#config.chatRetentionDays * 86_400_000;
    let deleted = 0;
    for await (const chat of this.#store.listChats()) {
      if (Date.parse(chat.lastActivityAt) >= cutoff || this.#queue.currentTurn(chat.id)) continue;
      await this.#lanes.run(chat.id, () => this.#store.deleteChat(chat.id));
      deleted++;
    }
    if (deleted) this.#log.info("retention sweep", { deletedChats: deleted });
    return deleted;
  }

  /** Writes pending partial answers now (shutdown). */
  async flush(): Promise<void> {
    await this.#lanes.settled();
    await this.#partials.flush();
  }

  // -------------------------------------------------------------------------------------

  /** A stopped turn whose worker vanished: keep what was streamed as a stopped reply. */
  async #finishStopped(turn: TurnRecord): Promise<void> {
    const answer = await this.#partials.answerOf(turn.chatId, turn.id);
    if (answer) {
      await this.postReply(turn.chatId, { content: answer, replyTo: turn.id, stopped: true });
      return;
    }
    await this.#lanes.run(turn.chatId, async () => {
      await this.#partials.settle(turn.chatId);
      await this.#queue.close(
        turn.id,
        "cancelled",
        null,
        { deletePartialOf: turn.chatId },
      );
      this.#partials.forget(turn.chatId);
      await this.#setStateInLane(turn.chatId, "idle", "Stopped before Terra started");
    });
    void this.#positions.announce();
  }

  async #requeued(turn: TurnRecord, detail: string): Promise<void> {
    this.#fanout.workers({
      type: "chat_activity",
      chatId: turn.chatId,
      messageId: turn.messageId,
      emittedAt: new Date().toISOString(),
    });
    this.#positions.forget(turn.chatId);
    await this.setWorkerState(turn.chatId, "queued", detail);
    void this.#positions.announce();
  }

  /** Sets, stores and broadcasts a worker state; the caller is in the chat's lane. */
  async #setStateInLane(
    chatId: string,
    state: WorkerStateName,
    detail: string,
    queuePosition?: number,
    about: { turnId?: string; code?: string } = {},
  ): Promise<WorkerStateEvent> {
    const event: WorkerStateEvent = {
      type: "workerState",
      chatId,
      state,
      detail,
      updatedAt: new Date().toISOString(),
      seq: (await this.#seqs.next(chatId)).seq,
    };
    if (queuePosition !== undefined) event.queuePosition = queuePosition;
    if (about.turnId) event.turnId = about.turnId;
    if (about.code) event.code = about.code;
    await this.#store.setWorkerState(event);
    await this.#fanout.chat(event);
    return event;
  }

  /**
   * Tells a waiting chat its place. Every relay announces what its own changes moved, from
   * its copy of the shared queue; the stored state keeps two relays from saying it twice.
   */
  #announcePosition(chatId: string, position: number): Promise<unknown> {
    return this.#lanes.run(chatId, async () => {
      if (this.#fanout.shared) {
        const current = await this.#store.getWorkerState(chatId);
        if (current?.state === "queued" && current.queuePosition === position) return current;
      }
      return await this.#setStateInLane(chatId, "queued", queueDetail(position), position);
    });
  }
}
