/** Test clients for a running relay: visitor and worker over HTTP and WebSocket. */
import { delay } from "../lib/delay.ts";
import { signRequest } from "../lib/hmac.ts";
import { assertEquals } from "./_assert.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

// deno-lint-ignore no-explicit-any
export type Json = any;

/** A response as `request()` returns it. */
export type Res = { status: number; body: Json; headers: Headers };

/** A JSON request; returns status, parsed body (or text) and headers. */
export async function request(
  url: string,
  init: { method?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } =
    {},
): Promise<Res> {
  const headers = new Headers(init.headers);
  let body: string | undefined = init.rawBody;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers.set("content-type", "application/json");
  }
  const res = await fetch(url, { method: init.method ?? (body ? "POST" : "GET"), headers, body });
  const text = await res.text();
  let parsed: Json = text;
  try {
    parsed = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** An `Authorization` header carrying `token`. */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** An error response: status, stable code, and a body of exactly `{error, code}`. */
export function assertError(res: Res, status: number, code: string, what = ""): void {
  const label = `${what} → ${res.status} ${JSON.stringify(res.body)}`;
  assertEquals([res.status, res.body?.code], [status, code], label);
  assertEquals(Object.keys(res.body).sort(), ["code", "error"], label);
}

/** A WebSocket handshake sent with fetch, so the refusal's HTTP status can be read. */
export function upgradeRequest(url: string, headers: Record<string, string> = {}) {
  return request(url, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-version": "13",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      ...headers,
    },
  });
}

/** Gets a visitor session token. */
export async function visitorToken(
  base: string,
  code: string = TEST_SECRETS.CHAT_PASSWORD,
): Promise<string> {
  const res = await request(`${base}/api/session`, { body: { accessCode: code } });
  if (res.status !== 200) {
    throw new Error(`session failed: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body.token;
}

/** Posts a visitor message with a bearer token; returns the response. */
export function postMessage(base: string, token: string, chatId: string, content: string) {
  return request(`${base}/api/chat/${chatId}/messages`, {
    body: { content },
    headers: { authorization: `Bearer ${token}` },
  });
}

/** A worker request with the service token (and an HMAC signature when `hmacSecret` is set). */
export async function workerRequest(
  base: string,
  path: string,
  body?: unknown,
  options: { hmacSecret?: string; token?: string; workerId?: string } = {},
) {
  const headers: Record<string, string> = {
    "x-service-token": options.token ?? TEST_SECRETS.SERVICE_TOKEN,
    "x-worker-id": options.workerId ?? "test-worker",
  };
  const raw = body === undefined ? undefined : JSON.stringify(body);
  if (options.hmacSecret) {
    const url = new URL(base + path);
    Object.assign(
      headers,
      await signRequest(
        options.hmacSecret,
        raw ? "POST" : "GET",
        url.pathname + url.search,
        new TextEncoder().encode(raw ?? ""),
      ),
    );
  }
  if (raw) headers["content-type"] = "application/json";
  return request(base + path, { method: raw ? "POST" : "GET", rawBody: raw, headers });
}

/** A WebSocket that records every JSON frame and lets a test wait for one. */
export class RecordingSocket {
  readonly socket: WebSocket;
  readonly events: Json[] = [];
  closeCode: number | null = null;
  closeReason = "";
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;
  #waiters = new Set<() => void>();

  constructor(url: string, headers?: Record<string, string>, protocols?: string[]) {
    // Deno's WebSocket takes headers in a non-standard options argument.
    this.socket = new WebSocket(url, { headers, protocols });
    this.opened = new Promise((resolve, reject) => {
      this.socket.addEventListener("open", () => resolve());
      this.socket.addEventListener("error", () => reject(new Error(`WebSocket error on ${url}`)));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.socket.addEventListener("close", (e) => {
        this.closeCode = e.code;
        this.closeReason = e.reason;
        resolve();
        this.#notify();
      });
    });
    this.socket.addEventListener("message", (e) => {
      this.events.push(JSON.parse(String(e.data)));
      this.#notify();
    });
  }

  /** Sends a JSON frame. */
  send(value: unknown): void {
    this.socket.send(JSON.stringify(value));
  }

  /** Waits (bounded) until `predicate(events)` is true; returns the events. */
  async waitFor(
    predicate: (events: Json[]) => boolean,
    timeoutMs = 10_000,
    what = "condition",
  ): Promise<Json[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.events)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `Timed out waiting for ${what}; got ${
            JSON.stringify(this.events).slice(-2000)
          } close=${this.closeCode}`,
        );
      }
      await new Promise<void>((resolve) => {
        const waiters = this.#waiters;
        const timer = setTimeout(done, Math.min(left, 200));
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
    return this.events;
  }

  /** Waits for the close event (bounded). */
  async waitClosed(timeoutMs = 10_000): Promise<number | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.closed, new Promise((r) => timer = setTimeout(r, timeoutMs))]);
    clearTimeout(timer);
    return this.closeCode;
  }

  /** Closes and waits for the close to finish. */
  async close(): Promise<void> {
    if (
      this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING
    ) {
      try {
        this.socket.close();
      } catch { /* closing */ }
    }
    await this.waitClosed(5_000);
  }

  #notify(): void {
    for (const waiter of this.#waiters) waiter();
    this.#waiters.clear();
  }
}

/** The subprotocols a browser offers to carry its session token in the handshake. */
export const tokenProtocols = (token: string) => ["terrarium.v1", `terrarium.token.${token}`];

/**
 * Opens a visitor socket with the token in the handshake (as the page does, in the
 * subprotocol) and waits for `ready`.
 */
export async function visitorSocket(
  base: string,
  chatId: string,
  token: string,
  since?: number,
): Promise<RecordingSocket> {
  const ws = new RecordingSocket(
    `${base.replace("http", "ws")}/api/chat?chatId=${chatId}${since ? `&since=${since}` : ""}`,
    undefined,
    tokenProtocols(token),
  );
  await ws.opened;
  await ws.waitFor((events) => events.some((e) => e.type === "ready"), 10_000, "ready");
  return ws;
}

/** Opens the worker socket and waits for `hello`. */
export async function workerSocket(base: string, workerId = "ws-worker"): Promise<RecordingSocket> {
  const ws = new RecordingSocket(
    `${base.replace("http", "ws")}/api/worker/updates?workerId=${workerId}`,
    {
      "x-service-token": TEST_SECRETS.SERVICE_TOKEN,
    },
  );
  await ws.opened;
  await ws.waitFor((events) => events.some((e) => e.type === "hello"), 10_000, "hello");
  return ws;
}

/** Sends a worker socket request and waits for its ack. */
export async function workerCall(
  ws: RecordingSocket,
  event: Record<string, unknown>,
): Promise<Json> {
  const requestId = crypto.randomUUID();
  ws.send({ ...event, requestId });
  const events = await ws.waitFor(
    (es) => es.some((e) => e.type === "ack" && e.requestId === requestId),
    10_000,
    `ack ${event.type}`,
  );
  return events.find((e) => e.type === "ack" && e.requestId === requestId);
}

/** Sleeps `ms`. */
export { delay as sleep } from "../lib/delay.ts";

/** Waits (bounded) until `check()` holds, polling every 25 ms; throws naming `what`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await delay(25);
  }
}

/** A chat's stored messages, read as a visitor with `token`. */
export async function chatHistory(base: string, token: string, chatId: string): Promise<Json[]> {
  const res = await request(`${base}/api/chat/${chatId}/messages`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (res.status !== 200) {
    throw new Error(`history failed: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

/** The chats with a turn waiting, sorted. */
export async function openChatIds(base: string): Promise<string[]> {
  const res = await workerRequest(base, "/api/chats/open");
  if (res.status !== 200) throw new Error(`open chats failed: ${res.status}`);
  return [...res.body.chatIds].sort();
}

/** The text a visitor rebuilds from the chunks it saw, each applied at its offset. */
export function applyChunks(events: Json[], kind = "answer", start = ""): string {
  let text = start;
  for (const e of events) {
    if (e.type === "assistantChunk" && e.kind === kind) text = text.slice(0, e.offset) + e.content;
  }
  return text;
}
