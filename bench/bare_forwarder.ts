/**
 * The floor (SPEC §8): the least a Deno WebSocket fan-out can do. A "worker" socket at
 * `/worker` (or `POST /chunk`) sends chunks; each frame is forwarded, unchanged, to every
 * socket open on `/visitor`. No auth, no parsing, no store: what the relay costs beyond
 * this is what the relay adds.
 *
 * Usage: `deno run --allow-net=127.0.0.1 bench/bare_forwarder.ts --port=N`; prints
 * `{"msg":"listening","port":N}` when ready, stops on SIGTERM.
 */

const port = Number(Deno.args.find((a) => a.startsWith("--port="))?.slice(7) ?? "0");
const visitors = new Set<WebSocket>();

function fanOut(data: string): void {
  for (const socket of visitors) {
    if (socket.readyState === WebSocket.OPEN) socket.send(data);
  }
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
  const path = new URL(req.url).pathname;
  if (req.method === "POST" && path === "/chunk") {
    fanOut(await req.text());
    return new Response('{"ok":true}', { headers: { "content-type": "application/json" } });
  }
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("Not found", { status: 404 });
  }
  const { socket, response } = Deno.upgradeWebSocket(req);
  if (path === "/worker") {
    socket.onmessage = (e) => fanOut(String(e.data));
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
