/**
 * The worker's socket transport: one outbound WebSocket to `/api/worker/updates`, for the
 * relay's pushes (`chat_activity`, `cancel`) and for requests with acks on the hot path.
 * It reconnects with full-jitter backoff, pings so idle proxies keep it open and a
 * half-open connection is noticed, and never holds more than a bounded send buffer.
 */
import type { z } from "zod";
import type { Logger } from "../log.ts";
import { CLOSE_ABNORMAL, CLOSE_NORMAL } from "../close_codes.ts";
import {
  ERROR_CODES,
  SocketErrorEvent,
  WorkerClientEvent,
  WorkerServerEvent,
} from "../protocol.ts";
import { Backoff } from "../backoff.ts";
import { delay } from "../delay.ts";
import type { WorkerConfig } from "./config.ts";
import { EMPTY_BODY } from "./relay_http.ts";
import { RelayRequestError } from "./relay_request_error.ts";

const SOCKET_BACKOFF = { baseMs: 500, capMs: 30_000 };
const SOCKET_REQUEST_TIMEOUT_MS = 10_000;
/** From `new WebSocket` to the relay's `hello`. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
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
const STOP_CLOSE_TIMEOUT_MS = 2_000;

const encoder = new TextEncoder();

/** A worker → relay socket event before the socket gives it its `requestId`. */
export type SocketEvent = z.input<typeof WorkerClientEvent> extends infer E
  ? E extends unknown ? Omit<E, "requestId"> : never
  : never;

/** A chunk the relay refused over the socket, as its `error` event names it. */
export type RefusedChunk = NonNullable<z.infer<typeof SocketErrorEvent>["chunk"]>;

/** What the socket tells its owner. Each call is guarded: a throwing handler is logged. */
export interface RelaySocketHandlers {
  /** Signs the handshake (`RelayHttp.headers`). */
  headers(method: string, url: URL, body: Uint8Array): Promise<Record<string, string>>;
  /** A `chat_activity` push. */
  activity(chatId: string): void;
  /** A visitor stopped the answer to `turnId`. */
  cancel(chatId: string, turnId: string): void;
  /** The relay refused a chunk (chunks get no ack): `code` says why. */
  chunkRefused(chunk: RefusedChunk, code: string): void;
  /** True on `hello`, false when a greeted socket goes away. */
  connection(connected: boolean): void;
  /** The handshake was refused with 401. */
  unauthorized(error: RelayRequestError): void;
}

interface PendingRequest {
  resolve: (result: unknown) => void;
  reject: (error: RelayRequestError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** One outbound WebSocket to the relay, kept open until `stop()`. */
export class RelaySocket {
  #config: WorkerConfig;
  #log: Logger;
  #handlers: RelaySocketHandlers;
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

  constructor(
    config: WorkerConfig,
    log: Logger,
    handlers: RelaySocketHandlers,
    random: () => number,
  ) {
    this.#config = config;
    this.#log = log;
    this.#handlers = handlers;
    this.#backoff = new Backoff({ ...SOCKET_BACKOFF, random });
  }

  /** Whether the socket is open and the relay's `hello` arrived. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Opens the socket and keeps it open (reconnecting with backoff) until `stop()`. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#generation++;
    this.#backoff.reset();
    void this.#connect();
  }

  /** Closes the socket, stops reconnecting and fails pending requests. */
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
    this.#drop(CLOSE_NORMAL, "Worker stopping");
    if (socket.readyState === WebSocket.CLOSED) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([closed, new Promise((r) => timer = setTimeout(r, STOP_CLOSE_TIMEOUT_MS))]);
    clearTimeout(timer);
  }

  /**
   * Sends `event` with a fresh `requestId` and resolves with the ack's result. A refusal
   * rejects with the relay's status and code; status 0 means the socket could not carry it
   * (down, busy, closed or silent before the ack): the caller may send it over HTTP.
   */
  request(event: SocketEvent): Promise<unknown> {
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
  async sendWhenDrained(event: SocketEvent): Promise<boolean> {
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

  async #connect(): Promise<void> {
    this.#reconnectTimer = null;
    const generation = this.#generation;
    if (this.#stopped || this.#socket) return;
    const url = new URL(this.#config.workerWsUrl);
    let socket: WebSocket;
    try {
      const headers = await this.#handlers.headers("GET", url, EMPTY_BODY);
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
      if (socket === this.#socket) this.#drop(CLOSE_NORMAL, "Handshake timed out");
    }, HANDSHAKE_TIMEOUT_MS);
    socket.onerror = (event) => {
      // e.g. "failed to connect to WebSocket: Invalid status code: 401"
      this.#lastSocketError = event instanceof ErrorEvent ? event.message : "socket error";
      if (/\b401\b/.test(this.#lastSocketError)) {
        this.#safely(() =>
          this.#handlers.unauthorized(
            new RelayRequestError(401, "unauthorized", this.#lastSocketError),
          )
        );
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
        socket.close(this.#stopped ? CLOSE_NORMAL : undefined, this.#stopped ? reason : undefined);
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
        return this.#safely(() => this.#handlers.activity(event.chatId));
      case "cancel":
        return this.#safely(() => this.#handlers.cancel(event.chatId, event.turnId));
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
        // Chunks get no ack, only this when they fail ("lease_lost" after a hand-over,
        // "chunk_gap" after the relay lost text). Once per code and connection is logged.
        if (event.chunk) {
          const chunk = event.chunk;
          this.#safely(() => this.#handlers.chunkRefused(chunk, event.code));
        }
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
        return this.#drop(CLOSE_ABNORMAL, "No pong from the relay");
      }
      this.#send(socket, '{"type":"ping"}');
    }, PING_INTERVAL_MS);
    this.#log.info("relay socket connected", { workerId: this.#config.workerId, leaseMs });
    this.#emitConnection(true);
  }

  #emitConnection(connected: boolean): void {
    this.#safely(() => this.#handlers.connection(connected));
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
