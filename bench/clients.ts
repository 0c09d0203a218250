/**
 * The load generator's lean clients for both servers under test: visitor sockets that only
 * look for the benchmark's marker in each frame (no JSON parse, no event log), and a chunk
 * source that sends over the worker socket or `POST`s one request per chunk.
 */
import { postMessage, visitorToken, workerRequest } from "../tests/_clients.ts";
import { TEST_SECRETS } from "../tests/_relay_process.ts";

/** The server under test, as the load process sees it. */
export interface Target {
  kind: "relay" | "bare";
  url: string;
  pid: number;
}

/** How a chunk reaches the server: the worker socket, or one HTTP request per chunk. */
export type Via = "socket" | "http";

/**
 * Called with each frame a visitor socket receives, when it arrived and, from
 * `openVisitors`, which of the sockets it opened (0 …) received it.
 */
export type OnFrame = (data: string, at: number, socket?: number) => void;

const OPEN_TIMEOUT_MS = 15_000;

/** The WebSocket URL of an HTTP base URL. */
export function wsUrl(url: string): string {
  return url.replace(/^http/, "ws");
}

/** Resolves when `socket` opens and `ready(frame)` is true for a frame, or rejects (bounded). */
export function opened(
  socket: WebSocket,
  ready: ((data: string) => boolean) | null,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error("Timed out opening a socket")), OPEN_TIMEOUT_MS);
    const done = () => {
      clearTimeout(timer);
      socket.removeEventListener("message", onMessage);
      resolve();
    };
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    const onMessage = (e: MessageEvent) => {
      if (ready?.(String(e.data))) done();
    };
    socket.addEventListener("open", () => {
      if (!ready) done();
    }, { once: true });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("error", () => fail(new Error("Socket error while opening")));
    socket.addEventListener(
      "close",
      (e) => fail(new Error(`Socket closed (${e.code} ${e.reason})`)),
    );
  });
}

/** A visitor session on the relay (one token serves every socket). */
export async function relaySession(target: Target): Promise<string> {
  return target.kind === "relay" ? await visitorToken(target.url) : "";
}

/**
 * Opens one visitor socket on `chatId` (on the relay, authenticated at the handshake);
 * `routed` puts a floor visitor on its own chat instead of the one broadcast set.
 */
export async function openVisitor(
  target: Target,
  chatId: string,
  token: string,
  onFrame: OnFrame,
  routed = false,
): Promise<WebSocket> {
  const url = target.kind === "relay"
    ? `${wsUrl(target.url)}/api/chat?chatId=${chatId}`
    : `${wsUrl(target.url)}/visitor${routed ? `?chatId=${chatId}` : ""}`;
  // The relay takes the token in the handshake, as the page sends it (a subprotocol).
  const socket = target.kind === "relay"
    ? new WebSocket(url, ["terrarium.v1", `terrarium.token.${token}`])
    : new WebSocket(url);
  const ready = target.kind === "relay" ? (d: string) => d.includes('"type":"ready"') : null;
  await opened(socket, ready);
  socket.onmessage = (e) => onFrame(e.data as string, performance.now());
  socket.onclose = null;
  return socket;
}

/** Opens `count` visitor sockets, `batch` handshakes at a time; `chatOf(i)` picks the chat. */
export async function openVisitors(
  target: Target,
  token: string,
  count: number,
  chatOf: (i: number) => string,
  onFrame: OnFrame,
  batch = 100,
): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i);
    sockets.push(
      ...await Promise.all(
        Array.from(
          { length: n },
          (_, j) =>
            openVisitor(target, chatOf(i + j), token, (data, at) => onFrame(data, at, i + j)),
        ),
      ),
    );
  }
  return sockets;
}

/** Closes sockets and waits (bounded) for their close handshakes. */
export async function closeAll(sockets: WebSocket[], timeoutMs = 10_000): Promise<void> {
  const closed = sockets.map((s) =>
    new Promise<void>((resolve) => {
      if (s.readyState === WebSocket.CLOSED) return resolve();
      s.addEventListener("close", () => resolve(), { once: true });
      try {
        s.close();
      } catch { /* closing */ }
    })
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([Promise.all(closed), new Promise((r) => timer = setTimeout(r, timeoutMs))]);
  clearTimeout(timer);
}

/** Sends chunks for one chat. */
export interface ChunkSource {
  /** Sends `content` over `via`; resolves when handed over (socket) or answered (HTTP). */
  send(content: string, via: Via): Promise<void>;
  close(): Promise<void>;
}

/**
 * A chunk source for `chatId`. On the relay this opens the chat's turn the way a worker
 * does (a visitor message, then a claim over the worker socket), because chunks of a chat
 * without a live turn are not streamed; offset 0 replaces the text, so it stays small.
 * The bare forwarder gets the same chunk frame and forwards it as it is.
 */
export async function chunkSource(
  target: Target,
  chatId: string,
  token: string,
): Promise<ChunkSource> {
  if (target.kind === "bare") {
    const frame = (content: string) =>
      JSON.stringify({ type: "chunk", chatId, content, done: false, kind: "answer" });
    const socket = new WebSocket(`${wsUrl(target.url)}/worker`);
    await opened(socket, null);
    return {
      async send(content, via) {
        if (via === "socket") return socket.send(frame(content));
        const res = await fetch(`${target.url}/chunk`, { method: "POST", body: frame(content) });
        await res.body?.cancel();
      },
      close: () => closeAll([socket]),
    };
  }

  const worker = new WebSocket(`${wsUrl(target.url)}/api/worker/updates?workerId=bench`, {
    headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
  } as unknown as string);
  await opened(worker, (d) => d.includes('"type":"hello"'));
  const posted = await postMessage(target.url, token, chatId, "Benchmark, stream to me");
  if (posted.status !== 201 && posted.status !== 200) {
    throw new Error(`Cannot post the visitor message: ${posted.status}`);
  }
  const requestId = crypto.randomUUID();
  const acked = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("No ack for the claim")), OPEN_TIMEOUT_MS);
    worker.onmessage = (e) => {
      const event = JSON.parse(String(e.data));
      if (event.type !== "ack" || event.requestId !== requestId) return;
      clearTimeout(timer);
      if (event.ok && event.result?.turn?.id) resolve(event.result.turn.id);
      else reject(new Error(`Claim failed: ${String(e.data)}`));
    };
  });
  worker.send(JSON.stringify({ type: "claim", workerId: "bench", chatId, requestId }));
  const turnId = await acked;
  worker.onmessage = null;
  const path = `/api/chat/${chatId}/agent-chunk`;
  return {
    async send(content, via) {
      const chunk = { content, offset: 0, turnId };
      if (via === "socket") worker.send(JSON.stringify({ type: "chunk", chatId, ...chunk }));
      else {
        const res = await workerRequest(target.url, path, chunk);
        if (res.status !== 200) throw new Error(`agent-chunk answered ${res.status}`);
      }
    },
    close: () => closeAll([worker]),
  };
}
