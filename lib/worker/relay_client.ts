/**
 * The worker's only way to talk to the relay, outbound only (SPEC §1, §4): one WebSocket
 * to `/api/worker/updates` for pushes and for the hot path (claims, chunks, replies), and
 * HTTP for everything while that socket is down. The socket reconnects with full-jitter
 * backoff. Every request carries the service token and, when enabled, an HMAC signature
 * over the exact bytes sent.
 */
import { z } from "zod";
import { signRequest } from "../hmac.ts";
import type { Logger } from "../log.ts";
import {
  type AgentChunkRequest,
  type AgentReplyRequest,
  ChatMessage,
  ClaimResponse,
  type ComponentReport,
  ERROR_CODES,
  ErrorBody,
  OpenChatsResponse,
  RenewResponse,
  type SiteProfile,
  type Turn,
  type TurnFailRequest,
  WorkerClientEvent,
  WorkerServerEvent,
  type WorkerStateName,
} from "../protocol.ts";
import { Backoff, delay } from "./backoff.ts";
import type { WorkerConfig } from "./config.ts";
import { readCapped } from "./read_capped.ts";

const SOCKET_BACKOFF = { baseMs: 500, capMs: 30_000 };
const REPLY_BACKOFF = { baseMs: 500, capMs: 4_000 };
/** Tries of `postReply` in all; the relay stores a reply once per `replyTo`. */
const REPLY_ATTEMPTS = 4;
const SOCKET_REQUEST_TIMEOUT_MS = 10_000;
/** From `new WebSocket` to the relay's `hello`. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
const HTTP_TIMEOUT_MS = 15_000;
/** Idle proxies (nginx's `proxy_read_timeout` is 60 s by default) must see traffic. */
const PING_INTERVAL_MS = 15_000;
/** The relay answers each ping; this much silence means a half-open connection. */
const SILENCE_LIMIT_MS = 3 * PING_INTERVAL_MS;
/** A connection that stayed up this long resets the reconnect backoff. */
const STABLE_CONNECTION_MS = 10_000;
const MAX_PENDING_REQUESTS = 256;
/** Chunks wait (bounded) for the socket's send buffer to drain below this. */
const MAX_BUFFERED_BYTES = 1 << 20;
const DRAIN_TIMEOUT_MS = 5_000;
const MAX_INBOUND_FRAME_CHARS = 1 << 20;
const MAX_RESPONSE_BYTES = 16 << 20;
const STOP_CLOSE_TIMEOUT_MS = 2_000;

/** `POST /api/chat/:chatId/agent` answers with the stored message plus `duplicate`. */
const ReplyResponse = ChatMessage.extend({ duplicate: z.boolean().default(false) });

/** A worker → relay socket event before the client gives it its `requestId`. */
type SocketEvent = z.input<typeof WorkerClientEvent> extends infer E
  ? E extends unknown ? Omit<E, "requestId"> : never
  : never;

const encoder = new TextEncoder();
const EMPTY_BODY = new Uint8Array();

/** A refusal from the relay, with its `{error, code}`; `status` 0: it could not be reached. */
export class RelayRequestError extends Error {
  /** The HTTP status, or 0 for network errors and a socket that went away. */
  readonly status: number;
  /** The relay's stable error code (or a client-side one such as "unreachable"). */
  readonly code: string;

  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RelayRequestError";
    this.status = status;
    this.code = code;
  }
}

/** Seams for tests. */
export interface RelayClientOptions {
  /** Used for every HTTP request. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Jitter source for the backoffs, in [0, 1). @default Math.random */
  random?: () => number;
}

interface PendingRequest {
  resolve: (result: unknown) => void;
  reject: (error: RelayRequestError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Talks to the relay over one outbound WebSocket, and over HTTP while it is down. */
export class RelayClient {
  #config: WorkerConfig;
  #log: Logger;
  #fetch: typeof fetch;
  #random: () => number;
  #backoff: Backoff;
  #stopped = true;
  /** Bumped by start/stop so a connect that was signing its headers knows it is stale. */
  #generation = 0;
  #socket: WebSocket | null = null;
  #ready = false;
  #readyAt = 0;
  #lastFrameAt = 0;
  #lastSocketError = "";
  #maxFrameBytes = 64 * 1024;
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  #handshakeTimer: ReturnType<typeof setTimeout> | null = null;
  #pingTimer: ReturnType<typeof setInterval> | null = null;
  #pending = new Map<string, PendingRequest>();
  #loggedErrorCodes = new Set<string>();
  #activity = new Set<(chatId: string) => void>();
  #cancel = new Set<(chatId: string, turnId: string) => void>();
  #connection = new Set<(connected: boolean) => void>();
  #rejected = new Set<(error: RelayRequestError) => void>();
  #wasRejected = false;

  constructor(config: WorkerConfig, log: Logger, options: RelayClientOptions = {}) {
    this.#config = config;
    this.#log = log;
    this.#fetch = options.fetch ?? fetch;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff({ ...SOCKET_BACKOFF, random: this.#random });
  }

  /** Whether the socket is open and the relay's `hello` arrived. */
  get connected(): boolean {
    return this.#ready;
  }

  /** Calls `listener` with the chat id of each `chat_activity` push. */
  onActivity(listener: (chatId: string) => void): void {
    this.#activity.add(listener);
  }

  /** Calls `listener` when a visitor stops the answer to `turnId`. */
  onCancel(listener: (chatId: string, turnId: string) => void): void {
    this.#cancel.add(listener);
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
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#generation++;
    this.#backoff.reset();
    void this.#connect();
  }

  /** Closes the socket, stops reconnecting and fails pending socket requests. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#generation++;
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    const socket = this.#socket;
    if (!socket) return;
    const closed = new Promise<void>((resolve) => {
      socket.addEventListener("close", () => resolve(), { once: true });
    });
    this.#drop(1000, "Worker stopping");
    if (socket.readyState === WebSocket.CLOSED) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([closed, new Promise((r) => timer = setTimeout(r, STOP_CLOSE_TIMEOUT_MS))]);
    clearTimeout(timer);
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
    if (await this.#sendWhenDrained({ ...chunk, type: "chunk", chatId })) return;
    await this.#http("POST", `/api/chat/${encodeURIComponent(chatId)}/agent-chunk`, chunk);
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
    await this.#http("PUT", "/api/worker/site", profile);
  }

  /** The chat's messages, oldest first. */
  async history(chatId: string): Promise<ChatMessage[]> {
    const result = await this.#http("GET", `/api/chat/${encodeURIComponent(chatId)}/messages`);
    return parseResult(z.array(ChatMessage), result, "history");
  }

  /** The chats with a turn waiting to be claimed. */
  async openChats(): Promise<string[]> {
    const result = await this.#http("GET", "/api/chats/open");
    return parseResult(OpenChatsResponse, result, "open chats").chatIds;
  }

  /** Reports the agent's and the LLM's status for `/api/health`. */
  async reportStatus(status: { agentApi: ComponentReport; llm: ComponentReport }): Promise<void> {
    await this.#http("POST", "/api/worker/status", { ...status, workerId: this.#config.workerId });
  }

  // ---------------------------------------------------------------------------------------
  // Requests

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
    if (this.#ready) {
      try {
        const result = await this.#socketRequest(event);
        return schema ? parseResult(schema, result, what) : (undefined as T);
      } catch (error) {
        if (!(error instanceof RelayRequestError) || error.status !== 0) throw error;
        this.#log.debug("socket request falls back to HTTP", { type: what, reason: error.code });
      }
    }
    const result = await this.#http("POST", path, body);
    return schema ? parseResult(schema, result, what) : (undefined as T);
  }

  #socketRequest(event: SocketEvent): Promise<unknown> {
    const socket = this.#socket;
    if (!this.#ready || !socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RelayRequestError(0, "socket_down", "The relay socket is down"));
    }
    if (this.#pending.size >= MAX_PENDING_REQUESTS || socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      return Promise.reject(new RelayRequestError(0, "socket_busy", "The relay socket is busy"));
    }
    const requestId = crypto.randomUUID();
    const frame = this.#frame({ ...event, requestId });
    if (frame === null) {
      return Promise.reject(
        new RelayRequestError(0, "not_for_socket", "The request cannot go over the socket"),
      );
    }
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(new RelayRequestError(0, "socket_timeout", "The relay did not answer in time"));
      }, SOCKET_REQUEST_TIMEOUT_MS);
      this.#pending.set(requestId, { resolve, reject, timer });
      if (!this.#send(socket, frame)) {
        clearTimeout(timer);
        this.#pending.delete(requestId);
        reject(new RelayRequestError(0, "socket_down", "The relay socket is down"));
      }
    });
  }

  /** Sends a fire-and-forget frame once the send buffer has room; false: use HTTP instead. */
  async #sendWhenDrained(event: SocketEvent): Promise<boolean> {
    const socket = this.#socket;
    if (!this.#ready || !socket) return false;
    const frame = this.#frame(event);
    if (frame === null) return false;
    // Waiting keeps the chunks of one answer in order; switching to HTTP here would not.
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      if (Date.now() > deadline || socket !== this.#socket) return false;
      await delay(25);
    }
    return socket === this.#socket && this.#ready && this.#send(socket, frame);
  }

  /**
   * The JSON frame, or null when it should go over HTTP instead: the relay answers a frame
   * it cannot parse with an `error` that names no request (so the request would only time
   * out), where the HTTP route answers with a precise 400; and its `hello` said how large a
   * frame may be (a larger one closes the socket with 1009).
   */
  #frame(event: SocketEvent & { requestId?: string }): string | null {
    if (!WorkerClientEvent.safeParse(event).success) return null;
    const frame = JSON.stringify(event);
    // The relay counts UTF-16 units; UTF-8 bytes are never fewer, so this errs on the safe side.
    const size = frame.length * 3 <= this.#maxFrameBytes ? 0 : encoder.encode(frame).byteLength;
    return size > this.#maxFrameBytes ? null : frame;
  }

  #send(socket: WebSocket, frame: string): boolean {
    if (socket.readyState !== WebSocket.OPEN) return false;
    try {
      socket.send(frame);
      return true;
    } catch {
      return false;
    }
  }

  async #headers(method: string, url: URL, body: Uint8Array): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      "x-service-token": this.#config.serviceToken,
      "x-worker-id": this.#config.workerId,
    };
    if (this.#config.hmacEnabled) {
      const pathAndQuery = url.pathname + url.search;
      Object.assign(
        headers,
        await signRequest(this.#config.hmacSecret, method, pathAndQuery, body),
      );
    }
    return headers;
  }

  async #http(method: "GET" | "POST" | "PUT", path: string, body?: unknown): Promise<unknown> {
    const url = new URL(this.#config.apiBaseUrl + path);
    const raw = body === undefined ? EMPTY_BODY : encoder.encode(JSON.stringify(body));
    const headers = await this.#headers(method, url, raw);
    if (body !== undefined) headers["content-type"] = "application/json";
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), HTTP_TIMEOUT_MS);
    let status: number;
    let text: string;
    try {
      const response = await this.#fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : raw,
        signal: controller.signal,
      });
      status = response.status;
      ({ text } = await readCapped(response.body, MAX_RESPONSE_BYTES));
    } catch (error) {
      const code = controller.signal.aborted ? "timeout" : "unreachable";
      throw new RelayRequestError(
        0,
        code,
        `Cannot reach the relay: ${method} ${url.pathname} failed (${code})`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch { /* not JSON: judged by the status below */ }
    if (status >= 200 && status < 300) return json;
    const problem = ErrorBody.safeParse(json);
    const error = new RelayRequestError(
      status,
      problem.success ? problem.data.code : `http_${status}`,
      problem.success ? problem.data.error : `The relay answered ${status} to ${method} ${path}`,
    );
    if (status === 401) this.#reject(error);
    throw error;
  }

  #reject(error: RelayRequestError): void {
    if (this.#wasRejected) return;
    this.#wasRejected = true;
    for (const listener of this.#rejected) this.#safely(() => listener(error));
  }

  // ---------------------------------------------------------------------------------------
  // The socket

  async #connect(): Promise<void> {
    this.#reconnectTimer = null;
    const generation = this.#generation;
    if (this.#stopped || this.#socket) return;
    const url = new URL(this.#config.workerWsUrl);
    let socket: WebSocket;
    try {
      const headers = await this.#headers("GET", url, EMPTY_BODY);
      // stop() (or stop() and start()) ran while the headers were being signed.
      if (generation !== this.#generation || this.#socket) return;
      // Deno's WebSocket takes request headers as a non-standard second argument.
      socket = new WebSocket(url, { headers } as unknown as string);
    } catch (error) {
      this.#log.warn("cannot open the relay socket", { error });
      return this.#scheduleReconnect();
    }
    this.#socket = socket;
    this.#lastSocketError = "";
    this.#lastFrameAt = Date.now();
    this.#handshakeTimer = setTimeout(() => {
      this.#lastSocketError = "no hello from the relay in time";
      if (socket === this.#socket) this.#drop(1000, "Handshake timed out");
    }, HANDSHAKE_TIMEOUT_MS);
    socket.onerror = (event) => {
      // e.g. "failed to connect to WebSocket: Invalid status code: 401"
      this.#lastSocketError = event instanceof ErrorEvent ? event.message : "socket error";
      if (/\b401\b/.test(this.#lastSocketError)) {
        this.#reject(new RelayRequestError(401, "unauthorized", this.#lastSocketError));
      }
    };
    socket.onmessage = (message) => {
      if (socket === this.#socket) this.#onFrame(message.data);
    };
    socket.onclose = (event) => {
      if (socket === this.#socket) this.#drop(event.code, event.reason);
    };
  }

  /** Forgets the current socket (closing it if needed) and, unless stopped, reconnects. */
  #drop(code: number, reason: string): void {
    const socket = this.#socket;
    if (!socket) return;
    this.#socket = null;
    if (this.#handshakeTimer !== null) clearTimeout(this.#handshakeTimer);
    if (this.#pingTimer !== null) clearInterval(this.#pingTimer);
    this.#handshakeTimer = this.#pingTimer = null;
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
      try {
        socket.close(this.#stopped ? 1000 : undefined, this.#stopped ? reason : undefined);
      } catch { /* already closing */ }
    }
    const wasReady = this.#ready;
    this.#ready = false;
    for (const [requestId, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(requestId);
      pending.reject(new RelayRequestError(0, "socket_closed", "The relay socket closed"));
    }
    if (wasReady) {
      if (Date.now() - this.#readyAt >= STABLE_CONNECTION_MS) this.#backoff.reset();
      const fields = { code, reason: reason.slice(0, 120) };
      if (this.#stopped) this.#log.info("relay socket closed", fields);
      else this.#log.warn("relay socket closed; reconnecting", fields);
      this.#emitConnection(false);
    } else if (!this.#stopped) {
      this.#log.warn("cannot connect to the relay socket", {
        error: this.#lastSocketError || `closed with ${code}`,
        attempt: this.#backoff.attempt + 1,
      });
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#reconnectTimer !== null) return;
    const waitMs = this.#backoff.next();
    this.#log.debug("reconnecting to the relay socket", { waitMs, attempt: this.#backoff.attempt });
    this.#reconnectTimer = setTimeout(() => void this.#connect(), waitMs);
  }

  #onFrame(data: unknown): void {
    if (typeof data !== "string" || data.length > MAX_INBOUND_FRAME_CHARS) {
      this.#log.warn("ignoring a non-text or oversized frame from the relay");
      return;
    }
    this.#lastFrameAt = Date.now();
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      json = undefined;
    }
    const parsed = WorkerServerEvent.safeParse(json);
    if (!parsed.success) {
      this.#log.warn("ignoring a malformed frame from the relay", { chars: data.length });
      return;
    }
    const event = parsed.data;
    switch (event.type) {
      case "hello":
        return this.#onHello(event.maxFrameBytes, event.leaseMs);
      case "chat_activity":
        for (const listener of this.#activity) this.#safely(() => listener(event.chatId));
        return;
      case "cancel":
        for (const listener of this.#cancel) {
          this.#safely(() => listener(event.chatId, event.turnId));
        }
        return;
      case "ack": {
        const pending = this.#pending.get(event.requestId);
        if (!pending) return; // timed out already, and retried over HTTP
        this.#pending.delete(event.requestId);
        clearTimeout(pending.timer);
        if (event.ok) return pending.resolve(event.result);
        const code = event.code ?? "refused";
        return pending.reject(
          new RelayRequestError(
            ackStatus(event.status, code),
            code,
            event.error ?? "The relay refused the request",
          ),
        );
      }
      case "error":
        // Chunks get no ack, only this when they fail (e.g. "lease_lost" after a hand-over;
        // the next renewal reports that). Once per code and connection is enough to see it.
        if (!this.#loggedErrorCodes.has(event.code)) {
          this.#loggedErrorCodes.add(event.code);
          this.#log.warn("the relay refused a socket frame", { code: event.code });
        }
        return;
      case "pong":
        return;
    }
  }

  #onHello(maxFrameBytes: number, leaseMs: number): void {
    const socket = this.#socket;
    if (this.#ready || !socket) return;
    if (this.#handshakeTimer !== null) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    this.#ready = true;
    this.#readyAt = Date.now();
    this.#maxFrameBytes = maxFrameBytes;
    this.#loggedErrorCodes.clear();
    this.#pingTimer = setInterval(() => {
      if (socket !== this.#socket) return;
      if (Date.now() - this.#lastFrameAt > SILENCE_LIMIT_MS) {
        this.#lastSocketError = "the relay stopped answering pings";
        return this.#drop(1006, "No pong from the relay");
      }
      this.#send(socket, '{"type":"ping"}');
    }, PING_INTERVAL_MS);
    this.#log.info("relay socket connected", { workerId: this.#config.workerId, leaseMs });
    this.#emitConnection(true);
  }

  #emitConnection(connected: boolean): void {
    for (const listener of this.#connection) this.#safely(() => listener(connected));
  }

  /** A listener that throws must not take the socket's frame handling down with it. */
  #safely(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.#log.error("a relay event listener failed", { error });
    }
  }
}

function parseResult<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new RelayRequestError(
    502,
    "bad_response",
    `The relay's answer to "${what}" does not match the protocol`,
    { cause: result.error },
  );
}

/**
 * The HTTP status a refusing ack stands for: the relay sends it (issue 13); a relay from
 * before sent only the code, whose status the protocol's catalogue knows (else a plain 400).
 */
function ackStatus(status: number | undefined, code: string): number {
  if (status !== undefined) return status;
  return Object.hasOwn(ERROR_CODES, code)
    ? ERROR_CODES[code as keyof typeof ERROR_CODES].status
    : 400;
}
