/**
 * The floor (SPEC §8): the least a Deno WebSocket fan-out can do. A "worker" socket at
 * `/worker` (or `POST /chunk`) sends chunks; each frame is forwarded, unchanged, to every
 * socket open on `/visitor`. No auth, no parsing, no store: what the relay costs beyond
 * this is what the relay adds.
 *
 * For many chats (the capacity phase), a visitor opens `/visitor?chatId=ID` and chunks come
 * in on `/chat-worker` (or `POST /chat-chunk`): each frame goes only to its chat's sockets,
 * found by a string search for its `"chatId"` (no JSON parse; the least routing can cost).
 *
 * Usage: `deno run --allow-net=127.0.0.1 bench/bare_forwarder.ts --port=N`; prints
 * `{"msg":"listening","port":N}` when ready, stops on SIGTERM.
 */

const port = Number(Deno.args.find((a) => a.startsWith("--port="))?.slice(7) ?? "0");
const visitors = new Set<WebSocket>();
const chats = new Map<string, Set<WebSocket>>();

function fanOut(data: string, to: Set<WebSocket> = visitors): void {
  for (const socket of to) {
    if (socket.readyState === WebSocket.OPEN) socket.send(data);
  }
}

const CHAT_ID = '"chatId":"';

/** Forwards `data` to the sockets of the chat its `"chatId":"…"` names. */
function route(data: string): void {
  const start = data.indexOf(CHAT_ID);
  if (start < 0) return;
  const end = data.indexOf('"', start + CHAT_ID.length);
  const to = chats.get(data.slice(start + CHAT_ID.length, end));
  if (to) fanOut(data, to);
}

const shutdown = new AbortController();
const server = Deno.serve({
  hostname: "127.0.0.1",
  port,
  signal: shutdown.signal,
  onListen: (addr) => {
    // deno-lint-ignore no-console
    console.log(JSON.stringify({ msg: "listening", component: "bare-forwarder", port: addr.port }));
  },
}, async (req) => {
  const url = new URL(req.url);
  const path = url.pathname;
  if (req.method === "POST" && (path === "/chunk" || path === "/chat-chunk")) {
    const body = await req.text();
    if (path === "/chunk") fanOut(body);
    else route(body);
    return new Response('{"ok":true}', { headers: { "content-type": "application/json" } });
  }
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("Not found", { status: 404 });
  }
  const { socket, response } = Deno.upgradeWebSocket(req);
  const chatId = url.searchParams.get("chatId");
  if (path === "/worker") {
    socket.onmessage = (e) => fanOut(String(e.data));
  } else if (path === "/chat-worker") {
    socket.onmessage = (e) => route(String(e.data));
  } else if (path === "/visitor" && chatId) {
    socket.onopen = () => {
      const set = chats.get(chatId) ?? new Set();
      chats.set(chatId, set.add(socket));
    };
    socket.onclose = () => {
      const set = chats.get(chatId);
      set?.delete(socket);
      if (set?.size === 0) chats.delete(chatId);
    };
  } else if (path === "/visitor") {
    socket.onopen = () => visitors.add(socket);
    socket.onclose = () => visitors.delete(socket);
  } else {
    socket.onopen = () => socket.close(1008, "Unknown path");
  }
  socket.onerror = () => {};
  return response;
});

Deno.addSignalListener("SIGTERM", () => shutdown.abort());
await server.finished;
