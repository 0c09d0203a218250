/**
 * Visitors whose sockets never read (raw TCP clients that finish the handshake and then
 * read nothing), in several chats at once while answers stream (issue 7, SPEC §8 "slow or
 * dead visitor sockets never delay others"). relay_fanout_test.ts covers one stalled socket
 * in one chat via the drop metric; this covers what each visitor sees: the others, in the
 * same and in other chats, get every chunk in order; each stuck visitor is sent at most the
 * relay's buffer cap plus what the kernel holds, then a 1013 close, and loses nothing once
 * it reconnects and resumes.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  applyChunks,
  type Json,
  postMessage,
  type RecordingSocket,
  request,
  visitorSocket,
  visitorToken,
  workerCall,
  workerSocket,
} from "./_clients.ts";
import { afterHandshake, parseServerFrames, rawVisitorHandshake } from "./_raw_websocket.ts";
import { TEST_SECRETS, withRelay } from "./_relay_process.ts";

const STUCK_CHATS = ["stuck-0", "stuck-1", "stuck-2"];
const QUIET_CHAT = "no-stuck-visitor";
const CHUNK_CHARS = 60_000;
const ROUNDS = 200; // 200 × 60 kB = 12 MB per chat, far past the cap and kernel buffers
const CAP = 256 * 1024;

/**
 * The most a stuck reader can be sent: the relay's cap and one chunk, plus what the kernels
 * hold on loopback (the sender's largest autotuned send buffer, the receiver's default).
 */
async function maxBytesSent(): Promise<number> {
  const field = async (name: string, index: number, fallback: number) => {
    try {
      const text = await Deno.readTextFile(`/proc/sys/net/ipv4/${name}`);
      return Number(text.trim().split(/\s+/)[index]) || fallback;
    } catch {
      return fallback;
    }
  };
  const send = await field("tcp_wmem", 2, 4 * 1024 * 1024);
  const receive = await field("tcp_rmem", 1, 128 * 1024);
  return CAP + CHUNK_CHARS + send + 2 * receive;
}

/** Whether `tail` ends with a whole close frame (opcode 8, short payload). */
function endsWithClose(tail: Uint8Array): boolean {
  for (let i = Math.max(0, tail.length - 130); i + 1 < tail.length; i++) {
    if (tail[i] === 0x88 && i + 2 + tail[i + 1]! === tail.length) return true;
  }
  return false;
}

/**
 * Reads a connection until the relay's close frame or the end (bounded by count and idle
 * time); returns every byte.
 */
async function drain(conn: Deno.TcpConn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(256 * 1024);
  for (let i = 0; i < 10_000; i++) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buffer).catch(() => null),
      new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 5_000)),
    ]);
    clearTimeout(timer);
    if (n === null) break;
    parts.push(buffer.slice(0, n));
    if (endsWithClose(buffer.subarray(0, n))) break;
  }
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("visitors that never read, in several chats, are cut off at the cap and resume; everyone else gets every chunk", async () => {
  await withRelay({
    MAX_SOCKET_BUFFER_BYTES: `${CAP}b`,
    BODY_SIZE_LIMIT: "1mb",
    MAX_SOCKETS_PER_IP: "100",
  }, async (relay) => {
    const token = await visitorToken(relay.url);
    const worker = await workerSocket(relay.url);
    const chats = [...STUCK_CHATS, QUIET_CHAT];
    const readers = new Map<string, RecordingSocket[]>();
    const stuck = new Map<string, Deno.TcpConn>();
    try {
      for (const chatId of chats) {
        readers.set(chatId, [
          await visitorSocket(relay.url, chatId, token),
          await visitorSocket(relay.url, chatId, token),
        ]);
      }
      for (const chatId of STUCK_CHATS) {
        stuck.set(chatId, await rawVisitorHandshake(relay.port, chatId, token));
      }
      const turns = new Map<string, Json>();
      for (const chatId of chats) {
        await postMessage(relay.url, token, chatId, "Flood us all");
        const claim = await workerCall(worker, { type: "claim", workerId: "w", chatId });
        turns.set(chatId, claim.result.turn);
      }

      const big = (chatId: string, round: number) => `${chatId}:${round}:`.padEnd(CHUNK_CHARS, "x");
      const seen = (socket: RecordingSocket) =>
        socket.events.filter((e) =>
          e.type === "assistantChunk" && e.content.length === CHUNK_CHARS
        );
      for (let round = 0; round < ROUNDS; round++) {
        for (const chatId of chats) {
          // Offset 0 replaces the text: the answer stays small while the bytes pile up.
          worker.send({
            type: "chunk",
            chatId,
            content: big(chatId, round),
            offset: 0,
            turnId: turns.get(chatId).id,
          });
        }
        // The readers keep pace, as browsers do; the stuck ones never read.
        if (round % 5 === 4) {
          for (const socket of [...readers.values()].flat()) {
            await socket.waitFor(() => seen(socket).length > round, 20_000, `round ${round}`);
          }
        }
      }
      for (const chatId of chats) {
        await workerCall(worker, {
          type: "reply",
          chatId,
          content: big(chatId, ROUNDS - 1),
          replyTo: turns.get(chatId).id,
        });
      }

      // Every reader got every chunk of its own chat, in order, and nothing of another chat.
      for (const [chatId, sockets] of readers) {
        for (const socket of sockets) {
          await socket.waitFor(
            (es) => es.some((e) => e.type === "message" && e.sender === "Terra"),
            20_000,
            `${chatId} reply`,
          );
          const chunks = seen(socket);
          assertEquals(
            chunks.map((c) => c.content.slice(0, 20)),
            Array.from({ length: ROUNDS }, (_, r) => big(chatId, r).slice(0, 20)),
            `${chatId}: every chunk, in order`,
          );
          assert(socket.events.every((e) => e.chatId === undefined || e.chatId === chatId));
          assertEquals(socket.closeCode, null);
        }
      }

      // Each stuck visitor was sent a bounded share, then told to go away with 1013...
      const streamedBytes = ROUNDS * CHUNK_CHARS;
      const bound = await maxBytesSent();
      assert(
        bound < streamedBytes / 2,
        `the stream (${streamedBytes}) dwarfs the bound (${bound})`,
      );
      for (const [chatId, conn] of stuck) {
        const bytes = await drain(conn);
        const { opcodes, texts, closeCode } = parseServerFrames(afterHandshake(bytes));
        assertEquals(closeCode, 1013, `${chatId}: closed as too slow (${opcodes.length} frames)`);
        // The relay held at most its cap for the stuck socket, not the whole stream.
        assert(bytes.length <= bound, `${chatId}: got ${bytes.length} bytes, bound ${bound}`);
        // ...and resumes from the last event it saw, ending with the whole answer.
        const lastSeq = Math.max(0, ...texts.map((t) => JSON.parse(t).seq ?? 0));
        const resumed = await visitorSocket(relay.url, chatId, token, lastSeq);
        try {
          const reply = resumed.events.find((e) => e.type === "message" && e.sender === "Terra");
          assertEquals(reply?.content, big(chatId, ROUNDS - 1), `${chatId}: resumed to the end`);
          assertEquals(applyChunks(resumed.events), "", "no stale partial after the reply");
        } finally {
          await resumed.close();
        }
      }

      const metrics = await request(`${relay.url}/metrics`, {
        headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
      });
      const dropped = Number(/terrarium_sockets_dropped_total (\d+)/.exec(metrics.body)?.[1]);
      assertEquals(dropped, STUCK_CHATS.length, "exactly the stuck sockets were dropped");
    } finally {
      for (const conn of stuck.values()) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await Promise.all([...readers.values()].flat().map((s) => s.close()));
      await worker.close();
    }
  });
});
