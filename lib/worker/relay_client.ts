/**
 * The worker's only way to talk to the relay, outbound only (SPEC §4): one WebSocket to
 * `/api/worker/updates` for pushes and for the hot path (chunks, claims, replies), HTTP
 * for everything while that socket is down. The socket reconnects with exponential backoff
 * and full jitter. Requests are authenticated with the service token and, when enabled,
 * HMAC-signed over the exact bytes sent.
 */
import { signRequest } from "../hmac.ts";
import type { Logger } from "../log.ts";
import {
  type AgentChunkRequest,
  type AgentReplyRequest,
  type ChatMessage,
  type ComponentReport,
  type RenewResponse,
  type Turn,
  WorkerServerEvent,
  type WorkerStateName,
} from "../protocol.ts";
import type { WorkerConfig } from "./config.ts";

/** A refusal from the relay (`status` 0: the relay could not be reached). */
export class RelayRequestError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RelayRequestError";
    this.status = status;
    this.code = code;
  }
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
const SOCKET_REQUEST_TIMEOUT_MS = 10_000;
const HTTP_TIMEOUT_MS = 15_000;
const PING_EVERY_MS = 15_000;
const REPLY_ATTEMPTS = 4;

interface PendingRequest {
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

export interface RelayClientOptions {
  fetch?: typeof fetch;
  random?: () => number;
}

export class RelayClient {
  #config: WorkerConfig;
  #log: Logger;
  #fetch: typeof fetch;
  #random: () => number;
  #socket: WebSocket | null = null;
  #ready = false;
  #stopped = true;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  #pingTimer: ReturnType<typeof setInterval> | null = null;
  #pending = new Map<string, PendingRequest>();
  #activity = new Set<(chatId: string) => void>();
  #cancel = new Set<(chatId: string, turnId: string) => void>();
  #connection = new Set<(connected: boolean) => void>();

  constructor(config: WorkerConfig, log: Logger, options: RelayClientOptions = {}) {
    this.#config = config;
    this.#log = log;
    this.#fetch = options.fetch ?? fetch;
    this.#random = options.random ?? Math.random;
  }

  /** Whether the socket is open and greeted. */
  get connected(): boolean {
    return this.#ready;
  }

  /** Called with a chat id whenever a visitor message (or an expired lease) makes work. */
  onActivity(listener: (chatId: string) => void): void {
    this.#activity.add(listener);
  }
  /** Called when a visitor stops an answer. */
  onCancel(listener: (chatId: string, turnId: string) => void): void {
    this.#cancel.add(listener);
  }
  /** Called when the socket comes up or goes down. */
  onConnection(listener: (connected: boolean) => void): void {
    this.#connection.add(listener);
  }

  /** Opens the socket and keeps it open until `stop()`. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    void this.#connect();
  }

  /** Closes the socket and stops reconnecting. */
  stop(): Promise<void> {
    this.#stopped = true;
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    const socket = this.#socket;
    if (!socket || socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      socket.addEventListener("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.close(1000, "Worker stopping");
    });
  }

  /** Claims the next turn (of `chatId`, if given), or null when there is none. */
  async claim(chatId?: string): Promise<Turn | null> {
    const body = { workerId: this.#config.workerId, ...(chatId ? { chatId } : {}) };
    const result = await this.#call<{ turn: Turn | null }>(
      { type: "claim", ...body },
      "POST",
      "/api/worker/turns/claim",
      body,
    );
    return result.turn;
  }

  /** Extends a lease; throws `RelayRequestError` with code "lease_lost" when it is gone. */
  renew(turnId: string, leaseId: string): Promise<RenewResponse> {
    return this.#call<RenewResponse>(
      { type: "renew", turnId, leaseId },
      "POST",
      `/api/worker/turns/${turnId}/renew`,
      { leaseId },
    );
  }

  /** Gives a turn back to the queue. */
  async release(turnId: string, leaseId: string): Promise<void> {
    await this.#call(
      { type: "release", turnId, leaseId },
      "POST",
      `/api/worker/turns/${turnId}/release`,
      { leaseId },
    );
  }

  /** Streams a chunk: a socket frame with no round trip, or an HTTP post when it is down. */
  async sendChunk(chatId: string, chunk: AgentChunkRequest): Promise<void> {
    if (this.#ready && this.#socket?.readyState === WebSocket.OPEN) {
      this.#socket.send(JSON.stringify({ type: "chunk", chatId, ...chunk }));
      return;
    }
    await this.#http("POST", `/api/chat/${chatId}/agent-chunk`, chunk);
  }

  /** Sets the chat's worker state. */
  async setState(chatId: string, state: WorkerStateName, detail?: string): Promise<void> {
    const body = { state, ...(detail ? { detail } : {}) };
    await this.#call(
      { type: "state", chatId, ...body },
      "POST",
      `/api/chat/${chatId}/worker-state`,
      body,
    );
  }

  /** Posts the reply; retried on network and 5xx failures (the relay stores it once). */
  async postReply(
    chatId: string,
    reply: AgentReplyRequest,
  ): Promise<{ message: ChatMessage; duplicate: boolean }> {
    for (let attempt = 1;; attempt++) {
      try {
        const result = await this.#call<ChatMessage & { duplicate: boolean }>(
          { type: "reply", chatId, ...reply },
          "POST",
          `/api/chat/${chatId}/agent`,
          reply,
        );
        const { duplicate, ...message } = result;
        return { message, duplicate };
      } catch (error) {
        const status = error instanceof RelayRequestError ? error.status : 0;
        if ((status !== 0 && status < 500) || attempt >= REPLY_ATTEMPTS) throw error;
        await new Promise((r) => setTimeout(r, this.#backoff(attempt)));
      }
    }
  }

  /** The chat's messages, oldest first. */
  history(chatId: string): Promise<ChatMessage[]> {
    return this.#http<ChatMessage[]>("GET", `/api/chat/${chatId}/messages`);
  }

  /** Chats with a turn waiting. */
  async openChats(): Promise<string[]> {
    return (await this.#http<{ chatIds: string[] }>("GET", "/api/chats/open")).chatIds;
  }

  /** Reports the agent and LLM status for `/api/health`. */
  async reportStatus(status: { agentApi: ComponentReport; llm: ComponentReport }): Promise<void> {
    await this.#http("POST", "/api/worker/status", { ...status, workerId: this.#config.workerId });
  }

  // -------------------------------------------------------------------------------------

  /** A request over the socket when it is up (falling back to HTTP if it drops), else HTTP. */
  async #call<T>(
    event: Record<string, unknown>,
    method: string,
    path: string,
    body: unknown,
  ): Promise<T> {
    if (this.#ready) {
      try {
        return await this.#socketRequest<T>(event);
      } catch (error) {
        if (error instanceof RelayRequestError && error.status !== 0) throw error;
        this.#log.debug("socket request failed; retrying over HTTP", { type: event.type });
      }
    }
    return await this.#http<T>(method, path, body);
  }

  #socketRequest<T>(event: Record<string, unknown>): Promise<T> {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RelayRequestError(0, "socket_down", "The relay socket is down"));
    }
    const requestId = crypto.randomUUID();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(
          new RelayRequestError(0, "socket_timeout", "The relay did not answer on the socket"),
        );
      }, SOCKET_REQUEST_TIMEOUT_MS);
      this.#pending.set(requestId, { resolve: resolve as (r: unknown) => void, reject, timer });
      socket.send(JSON.stringify({ ...event, requestId }));
    });
  }

  async #http<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(this.#config.apiBaseUrl + path);
    const raw = body === undefined
      ? new Uint8Array()
      : new TextEncoder().encode(JSON.stringify(body));
    const headers: Record<string, string> = {
      "x-service-token": this.#config.serviceToken,
      "x-worker-id": this.#config.workerId,
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.#config.hmacEnabled) {
      Object.assign(
        headers,
        await signRequest(this.#config.hmacSecret, method, url.pathname + url.search, raw),
      );
    }
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : raw,
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      });
    } catch (error) {
      throw new RelayRequestError(
        0,
        "unreachable",
        `The relay cannot be reached: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch { /* not JSON */ }
    if (!response.ok) {
      const problem = json as { error?: string; code?: string } | null;
      throw new RelayRequestError(
        response.status,
        problem?.code ?? "http_error",
        problem?.error ?? `The relay answered ${response.status}`,
      );
    }
    return json as T;
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const url = new URL(this.#config.workerWsUrl);
    url.searchParams.set("workerId", this.#config.workerId);
    const headers: Record<string, string> = {
      "x-service-token": this.#config.serviceToken,
      "x-worker-id": this.#config.workerId,
    };
    if (this.#config.hmacEnabled) {
      Object.assign(
        headers,
        await signRequest(this.#config.hmacSecret, "GET", url.pathname + url.search),
      );
    }
    let socket: WebSocket;
    try {
      // Deno's WebSocket takes request headers as a non-standard second argument.
      socket = new WebSocket(url, { headers } as unknown as string);
    } catch (error) {
      this.#log.warn("cannot open the relay socket", { error });
      return this.#scheduleReconnect();
    }
    this.#socket = socket;
    const openedAt = Date.now();
    socket.onmessage = (message) => this.#onFrame(String(message.data));
    socket.onerror = () => {};
    socket.onclose = (event) => {
      const wasReady = this.#ready;
      this.#ready = false;
      if (this.#pingTimer !== null) clearInterval(this.#pingTimer);
      for (const [id, pending] of this.#pending) {
        clearTimeout(pending.timer);
        pending.reject(new RelayRequestError(0, "socket_closed", "The relay socket closed"));
        this.#pending.delete(id);
      }
      if (wasReady) {
        this.#log.warn("relay socket closed", { code: event.code });
        for (const listener of this.#connection) listener(false);
      }
      // A connection that stayed up a while resets the backoff.
      if (Date.now() - openedAt > BACKOFF_CAP_MS) this.#attempt = 0;
      this.#scheduleReconnect();
    };
  }

  #onFrame(data: string): void {
    let event: WorkerServerEvent;
    try {
      event = WorkerServerEvent.parse(JSON.parse(data));
    } catch {
      this.#log.warn("ignoring a malformed frame from the relay");
      return;
    }
    switch (event.type) {
      case "hello":
        this.#ready = true;
        this.#attempt = 0;
        this.#pingTimer = setInterval(() => {
          if (this.#socket?.readyState === WebSocket.OPEN) this.#socket.send('{"type":"ping"}');
        }, PING_EVERY_MS);
        this.#log.info("relay socket connected");
        for (const listener of this.#connection) listener(true);
        break;
      case "chat_activity":
        for (const listener of this.#activity) listener(event.chatId);
        break;
      case "cancel":
        for (const listener of this.#cancel) listener(event.chatId, event.turnId);
        break;
      case "ack": {
        const pending = this.#pending.get(event.requestId);
        if (!pending) break;
        this.#pending.delete(event.requestId);
        clearTimeout(pending.timer);
        if (event.ok) pending.resolve(event.result);
        else {
          pending.reject(
            new RelayRequestError(
              409,
              event.code ?? "refused",
              event.error ?? "The relay refused the request",
            ),
          );
        }
        break;
      }
      case "error":
        this.#log.warn("the relay reported an error on the socket", { code: event.code });
        break;
      case "pong":
        break;
    }
  }

  #scheduleReconnect(): void {
    if (this.#stopped) return;
    const delay = this.#backoff(++this.#attempt);
    this.#reconnectTimer = setTimeout(() => void this.#connect(), delay);
  }

  /** Exponential backoff with full jitter. */
  #backoff(attempt: number): number {
    return Math.floor(this.#random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
  }
}
