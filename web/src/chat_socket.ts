/**
 * The live view of one chat: a WebSocket that authenticates in its handshake (the session
 * token rides in the `Sec-WebSocket-Protocol` header, as `terrarium.token.<token>` beside
 * `terrarium.v1`, since browsers cannot set other headers), receives what it missed since
 * the last sequence number it saw (`since` in the URL), and then live events. When the connection drops it reconnects with growing, jittered delays and
 * resumes from that number, so an answer streaming during a drop is complete afterwards.
 * A ping every so often finds connections that died without a close (a sleeping laptop,
 * a dropped Wi-Fi), which browsers otherwise notice only minutes later.
 */
import type { ChatEvent, VisitorServerEvent } from "../../lib/protocol.ts";

export type Connection = "connecting" | "live" | "retrying";

export interface SocketHandlers {
  onEvent(event: ChatEvent): void;
  onConnection(state: Connection, detail: string): void;
  /** The relay refused the token: the visitor must enter the code again. */
  onRefused(reason: string): void;
}

const POLICY_VIOLATION = 1008;
const PROTOCOL = "terrarium.v1";
const TOKEN_PROTOCOL_PREFIX = "terrarium.token.";
const PING_EVERY_MS = 20_000;
const PONG_WITHIN_MS = 10_000;
const MAX_DELAY_MS = 15_000;

/** The wait before reconnect attempt `attempt` (0-based): 0.5 s doubling to 15 s, ±25 %. */
export function reconnectDelayMs(attempt: number, random: number = Math.random()): number {
  const base = Math.min(MAX_DELAY_MS, 500 * 2 ** attempt);
  return Math.round(base * (0.75 + random * 0.5));
}

export class ChatSocket {
  #socket: WebSocket | null = null;
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /** When the socket last heard anything, and when an unanswered ping went out. */
  #heardAt = 0;
  #pingedAt: number | null = null;
  #closed = false;

  constructor(
    readonly url: string,
    readonly token: string,
    readonly lastSeq: () => number,
    readonly handlers: SocketHandlers,
  ) {}

  start(): void {
    this.#connect();
    globalThis.addEventListener("online", this.#retryNow);
  }

  /** Closes for good (new chat, new session, page leaving). */
  close(): void {
    this.#closed = true;
    globalThis.removeEventListener("online", this.#retryNow);
    clearTimeout(this.#retryTimer);
    clearInterval(this.#watchdog);
    this.#socket?.close(1000, "bye");
    this.#socket = null;
  }

  #retryNow = () => {
    if (this.#closed || this.#socket) return;
    clearTimeout(this.#retryTimer);
    this.#connect();
  };

  #connect(): void {
    this.handlers.onConnection(this.#attempt === 0 ? "connecting" : "retrying", "Connecting…");
    const url = new URL(this.url);
    url.searchParams.set("since", String(this.lastSeq()));
    const socket = new WebSocket(url.href, [PROTOCOL, TOKEN_PROTOCOL_PREFIX + this.token]);
    this.#socket = socket;
    let ready = false;
    let opened = false;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (message) => {
      let event: VisitorServerEvent;
      try {
        event = JSON.parse(String(message.data));
      } catch {
        return;
      }
      // Only a timestamp per message: streams are fast, timers are not free.
      this.#heardAt = Date.now();
      this.#pingedAt = null;
      if (event.type === "pong") return;
      if (event.type === "ready") {
        ready = true;
        this.#attempt = 0;
        this.handlers.onConnection("live", "Connected");
        return;
      }
      if (event.type === "error") return;
      this.handlers.onEvent(event);
    };
    socket.onclose = (close) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      clearInterval(this.#watchdog);
      if (this.#closed) return;
      if (close.code === POLICY_VIOLATION && !ready) {
        this.#closed = true;
        this.handlers.onRefused(close.reason || "The chat server refused the connection");
        return;
      }
      // A refused handshake (401) looks like a network failure to a page; ask over HTTP.
      if (!opened) void this.#probeRefusal();
      const delay = reconnectDelayMs(this.#attempt++);
      this.handlers.onConnection(
        "retrying",
        `Connection lost. Reconnecting in ${Math.ceil(delay / 1000)} s…`,
      );
      this.#retryTimer = setTimeout(() => this.#connect(), delay);
    };
    this.#heardAt = Date.now();
    this.#pingedAt = null;
    clearInterval(this.#watchdog);
    this.#watchdog = setInterval(() => this.#check(socket), PONG_WITHIN_MS / 2);
  }

  /** After a handshake that failed: whether the relay refuses the token (then stop for good). */
  async #probeRefusal(): Promise<void> {
    const url = new URL(this.url);
    const chatId = url.searchParams.get("chatId") ?? "";
    url.protocol = url.protocol === "wss:" ? "https:" : "http:";
    url.pathname = `${url.pathname}/${encodeURIComponent(chatId)}/worker-state`;
    url.search = "";
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${this.token}` } });
      if (res.status !== 401 || this.#closed) return;
      const body = await res.json().catch(() => ({}));
      this.close();
      this.handlers.onRefused(body.error || "The chat server refused the connection");
    } catch {
      // offline or the relay is down: keep retrying
    }
  }

  /** After a quiet spell, ping; a ping unanswered for too long means the link is dead. */
  #check(socket: WebSocket): void {
    if (socket.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    if (this.#pingedAt !== null) {
      if (now - this.#pingedAt > PONG_WITHIN_MS) socket.close(4000, "no pong");
    } else if (now - this.#heardAt >= PING_EVERY_MS) {
      this.#pingedAt = now;
      socket.send('{"type":"ping"}');
    }
  }
}
