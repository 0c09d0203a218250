/**
 * The worker's only way to talk to the relay, outbound only (SPEC §1, §4): the typed relay
 * API the rest of the worker calls. Each call goes over the socket (`relay_socket.ts`)
 * while it is up, for the hot path (claims, chunks, replies), and over HTTP
 * (`relay_http.ts`) while it is down or when it drops before the ack.
 */
import { z } from "zod";
import type { Logger } from "../log.ts";
import {
  type AgentChunkRequest,
  type AgentReplyRequest,
  ChatMessage,
  ClaimResponse,
  type ComponentReport,
  OpenChatsResponse,
  RenewResponse,
  type SiteProfile,
  type Turn,
  type TurnFailRequest,
  type WorkerStateName,
} from "../protocol.ts";
import { Backoff } from "../backoff.ts";
import { delay } from "../delay.ts";
import type { WorkerConfig } from "./config.ts";
import { RelayHttp } from "./relay_http.ts";
import { parseResult, RelayRequestError } from "./relay_request_error.ts";
import { type RefusedChunk, RelaySocket, type SocketEvent } from "./relay_socket.ts";

export { RelayRequestError } from "./relay_request_error.ts";

const REPLY_BACKOFF = { baseMs: 500, capMs: 4_000 };
/** Tries of `postReply` in all; the relay stores a reply once per `replyTo`. */
const REPLY_ATTEMPTS = 4;

/** `POST /api/chat/:chatId/agent` answers with the stored message plus `duplicate`. */
const ReplyResponse = ChatMessage.extend({ duplicate: z.boolean().default(false) });

/** Seams for tests. */
export interface RelayClientOptions {
  /** Used for every HTTP request. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Jitter source for the backoffs, in [0, 1). @default Math.random */
  random?: () => number;
}

/** Talks to the relay over one outbound WebSocket, and over HTTP while it is down. */
export class RelayClient {
  #config: WorkerConfig;
  #log: Logger;
  #random: () => number;
  #http: RelayHttp;
  #socket: RelaySocket;
  #activity = new Set<(chatId: string) => void>();
  #cancel = new Set<(chatId: string, turnId: string) => void>();
  #chunkRefused = new Set<(chunk: RefusedChunk, code: string) => void>();
  #connection = new Set<(connected: boolean) => void>();
  #rejected = new Set<(error: RelayRequestError) => void>();
  #wasRejected = false;

  constructor(config: WorkerConfig, log: Logger, options: RelayClientOptions = {}) {
    this.#config = config;
    this.#log = log;
    this.#random = options.random ?? Math.random;
    const reject = (error: RelayRequestError) => this.#reject(error);
    this.#http = new RelayHttp(config, { fetch: options.fetch ?? fetch, onUnauthorized: reject });
    this.#socket = new RelaySocket(config, log, {
      headers: (method, url, body) => this.#http.headers(method, url, body),
      activity: (chatId) => this.#emit(this.#activity, (l) => l(chatId)),
      cancel: (chatId, turnId) => this.#emit(this.#cancel, (l) => l(chatId, turnId)),
      chunkRefused: (chunk, code) => this.#emit(this.#chunkRefused, (l) => l(chunk, code)),
      connection: (connected) => this.#emit(this.#connection, (l) => l(connected)),
      unauthorized: reject,
    }, this.#random);
  }

  /** Whether the socket is open and the relay's `hello` arrived. */
  get connected(): boolean {
    return this.#socket.ready;
  }

  /** Calls `listener` with the chat id of each `chat_activity` push. */
  onActivity(listener: (chatId: string) => void): void {
    this.#activity.add(listener);
  }

  /** Calls `listener` when a visitor stops the answer to `turnId`. */
  onCancel(listener: (chatId: string, turnId: string) => void): void {
    this.#cancel.add(listener);
  }

  /** Calls `listener` when the relay refuses a chunk sent over the socket (no ack comes). */
  onChunkRefused(listener: (chunk: RefusedChunk, code: string) => void): void {
    this.#chunkRefused.add(listener);
  }

  /** Calls `listener` with true on `hello` and false when a greeted socket goes away. */
  onConnection(listener: (connected: boolean) => void): void {
    this.#connection.add(listener);
  }

  /**
   * Calls `listener` once when the relay refuses the worker's credentials (401 on any
   * request or on the socket handshake): retrying cannot fix that, so the worker stops.
   */
  onRejected(listener: (error: RelayRequestError) => void): void {
    this.#rejected.add(listener);
  }

  /** Opens the worker socket and keeps it open (reconnecting with backoff) until `stop()`. */
  start(): void {
    this.#socket.start();
  }

  /** Closes the socket, stops reconnecting and fails pending socket requests. */
  stop(): Promise<void> {
    return this.#socket.stop();
  }

  /** Claims the next turn (of `chatId`, if given); null when there is none. */
  async claim(chatId?: string): Promise<Turn | null> {
    const body = { workerId: this.#config.workerId, ...(chatId ? { chatId } : {}) };
    const result = await this.#call(
      { type: "claim", ...body },
      `/api/worker/turns/claim`,
      body,
      ClaimResponse,
    );
    return result.turn;
  }

  /** Extends a lease; throws `RelayRequestError` code "lease_lost" (409) when it is gone. */
  renew(turnId: string, leaseId: string): Promise<RenewResponse> {
    return this.#call(
      { type: "renew", turnId, leaseId },
      `/api/worker/turns/${encodeURIComponent(turnId)}/renew`,
      { leaseId },
      RenewResponse,
    );
  }

  /** Gives a leased turn back to the queue. */
  async release(turnId: string, leaseId: string): Promise<void> {
    await this.#call(
      { type: "release", turnId, leaseId },
      `/api/worker/turns/${encodeURIComponent(turnId)}/release`,
      { leaseId },
      null,
    );
  }

  /** Streams a chunk: one socket frame without a round trip, or an HTTP post when it is down. */
  async sendChunk(chatId: string, chunk: AgentChunkRequest): Promise<void> {
    if (await this.#socket.sendWhenDrained({ ...chunk, type: "chunk", chatId })) return;
    await this.#http.request("POST", `/api/chat/${encodeURIComponent(chatId)}/agent-chunk`, chunk);
  }

  /** Sets the chat's worker state (what the visitor sees while waiting). */
  async setState(chatId: string, state: WorkerStateName, detail?: string): Promise<void> {
    const body = detail === undefined ? { state } : { state, detail };
    await this.#call(
      { type: "state", chatId, ...body },
      `/api/chat/${encodeURIComponent(chatId)}/worker-state`,
      body,
      null,
    );
  }

  /**
   * Posts Terra's reply. The relay stores one reply per `replyTo`, so network failures and
   * 5xx are retried (a few times, with backoff); a 4xx is final.
   */
  async postReply(
    chatId: string,
    reply: AgentReplyRequest,
  ): Promise<{ message: ChatMessage; duplicate: boolean }> {
    const backoff = new Backoff({ ...REPLY_BACKOFF, random: this.#random });
    for (let attempt = 1;; attempt++) {
      try {
        const { duplicate, ...message } = await this.#call(
          { ...reply, type: "reply", chatId },
          `/api/chat/${encodeURIComponent(chatId)}/agent`,
          reply,
          ReplyResponse,
        );
        return { message, duplicate };
      } catch (error) {
        const status = error instanceof RelayRequestError ? error.status : -1;
        if ((status !== 0 && status < 500) || attempt >= REPLY_ATTEMPTS) throw error;
        const waitMs = backoff.next();
        this.#log.warn("posting the reply failed; retrying", {
          chatId,
          attempt,
          code: (error as RelayRequestError).code,
          waitMs,
        });
        await delay(waitMs);
      }
    }
  }

  /**
   * Reports that `turn` failed (issue 16): the relay closes it, keeps the failure on the
   * visitor message and stores `partial` as an interrupted reply. Idempotent on the relay,
   * so network failures and 5xx are retried like a reply.
   */
  async failTurn(
    turn: Pick<Turn, "id" | "chatId" | "leaseId">,
    failure: Omit<TurnFailRequest, "leaseId">,
  ): Promise<void> {
    const body: TurnFailRequest = { ...failure, leaseId: turn.leaseId };
    const backoff = new Backoff({ ...REPLY_BACKOFF, random: this.#random });
    for (let attempt = 1;; attempt++) {
      try {
        await this.#call(
          { ...body, type: "fail", chatId: turn.chatId, turnId: turn.id },
          `/api/worker/turns/${encodeURIComponent(turn.id)}/fail`,
          body,
          null,
        );
        return;
      } catch (error) {
        const status = error instanceof RelayRequestError ? error.status : -1;
        if ((status !== 0 && status < 500) || attempt >= REPLY_ATTEMPTS) throw error;
        await delay(backoff.next());
      }
    }
  }

  /** Publishes the operator's site words (`PUT /api/worker/site`). */
  async publishSite(profile: SiteProfile): Promise<void> {
    await this.#http.request("PUT", "/api/worker/site", profile);
  }

  /** The chat's messages, oldest first. */
  async history(chatId: string): Promise<ChatMessage[]> {
    const result = await this.#http.request(
      "GET",
      `/api/chat/${encodeURIComponent(chatId)}/messages`,
    );
    return parseResult(z.array(ChatMessage), result, "history");
  }

  /** The chats with a turn waiting to be claimed. */
  async openChats(): Promise<string[]> {
    const result = await this.#http.request("GET", "/api/chats/open");
    return parseResult(OpenChatsResponse, result, "open chats").chatIds;
  }

  /** Reports the agent's and the LLM's status for `/api/health`. */
  async reportStatus(status: { agentApi: ComponentReport; llm: ComponentReport }): Promise<void> {
    await this.#http.request("POST", "/api/worker/status", {
      ...status,
      workerId: this.#config.workerId,
    });
  }

  /**
   * A request over the socket while it is up; over HTTP when it is down, and again over
   * HTTP when the socket drops or stalls before the ack (every such request is safe to
   * repeat). A refusal by the relay is final either way.
   */
  async #call<T>(
    event: SocketEvent,
    path: string,
    body: unknown,
    schema: z.ZodType<T> | null,
  ): Promise<T> {
    const what = event.type;
    if (this.#socket.ready) {
      try {
        const result = await this.#socket.request(event);
        return schema ? parseResult(schema, result, what) : (undefined as T);
      } catch (error) {
        if (!(error instanceof RelayRequestError) || error.status !== 0) throw error;
        this.#log.debug("socket request falls back to HTTP", { type: what, reason: error.code });
      }
    }
    const result = await this.#http.request("POST", path, body);
    return schema ? parseResult(schema, result, what) : (undefined as T);
  }

  #reject(error: RelayRequestError): void {
    if (this.#wasRejected) return;
    this.#wasRejected = true;
    this.#emit(this.#rejected, (listener) => listener(error));
  }

  /** Calls each listener; one that throws must not take the transport down with it. */
  #emit<L>(listeners: Set<L>, call: (listener: L) => void): void {
    for (const listener of listeners) {
      try {
        call(listener);
      } catch (error) {
        this.#log.error("a relay event listener failed", { error });
      }
    }
  }
}
