/** A reconnect storm: visitors drop and resume while answers stream; nothing is lost or repeated. */
import { assert, assertEquals } from "./_assert.ts";
import {
  applyChunks,
  type Json,
  postMessage,
  RecordingSocket,
  sleep,
  tokenProtocols,
  visitorToken,
  workerCall,
  workerSocket,
} from "./_clients.ts";
import { withRelay } from "./_relay_process.ts";

const CHATS = 10;
const VISITORS_PER_CHAT = 20;
const CHUNKS = 60;

/** One visitor that keeps every event it saw across its reconnects. */
class Visitor {
  seen: Json[] = [];
  socket: RecordingSocket | null = null;
  lastSeq = 0;
  reconnects = 0;
  constructor(readonly base: string, readonly chatId: string, readonly token: string) {}

  async connect(): Promise<void> {
    const url = `${
      this.base.replace("http", "ws")
    }/api/chat?chatId=${this.chatId}&since=${this.lastSeq}`;
    const socket = new RecordingSocket(url, undefined, tokenProtocols(this.token));
    this.socket = socket;
    await socket.opened;
    socket.socket.addEventListener("message", (e) => {
      const event = JSON.parse(String(e.data));
      if (typeof event.seq !== "number" || event.type === "ready") return;
      this.seen.push(event);
      this.lastSeq = Math.max(this.lastSeq, event.seq);
    });
    await socket.waitFor((es) => es.some((e) => e.type === "ready"), 10_000, "ready");
  }

  async drop(): Promise<void> {
    await this.socket?.close();
    this.reconnects++;
  }
}

Deno.test("hundreds of visitors dropping and resuming mid-answer lose and repeat nothing", async () => {
  await withRelay({
    MAX_SOCKETS_PER_IP: "1000",
    MAX_SOCKETS_PER_CHAT: "100",
    RATE_LIMIT_MAX_PER_IP: "1000",
  }, async (relay) => {
    const token = await visitorToken(relay.url);
    const worker = await workerSocket(relay.url);
    const visitors: Visitor[] = [];
    for (let c = 0; c < CHATS; c++) {
      for (let v = 0; v < VISITORS_PER_CHAT; v++) {
        visitors.push(new Visitor(relay.url, `storm-${c}`, token));
      }
    }
    try {
      for (let i = 0; i < visitors.length; i += 50) {
        await Promise.all(visitors.slice(i, i + 50).map((v) => v.connect()));
      }
      const turns = [];
      for (let c = 0; c < CHATS; c++) {
        await postMessage(relay.url, token, `storm-${c}`, "Tell me a long story");
        turns.push(
          (await workerCall(worker, { type: "claim", workerId: "w", chatId: `storm-${c}` })).result
            .turn,
        );
      }
      const words = Array.from({ length: CHUNKS }, (_, i) => `w${i} `);
      // Stream in rounds; between rounds a third of the visitors drop and resume.
      for (let round = 0; round < 6; round++) {
        for (const turn of turns) {
          for (const content of words.slice(round * 10, round * 10 + 10)) {
            worker.send({ type: "chunk", chatId: turn.chatId, content, turnId: turn.id });
          }
        }
        const droppers = visitors.filter((_, i) => (i + round) % 3 === 0);
        await Promise.all(droppers.map((v) => v.drop()));
        await sleep(20);
        for (let i = 0; i < droppers.length; i += 50) {
          await Promise.all(droppers.slice(i, i + 50).map((v) => v.connect()));
        }
      }
      for (const turn of turns) {
        await workerCall(worker, {
          type: "reply",
          chatId: turn.chatId,
          content: words.join(""),
          replyTo: turn.id,
        });
      }
      await Promise.all(
        visitors.map((v) =>
          v.socket!.waitFor(
            () => v.seen.some((e) => e.type === "message" && e.sender === "Terra"),
            30_000,
            "reply",
          )
        ),
      );

      for (const v of visitors) {
        const seqs = v.seen.map((e) => e.seq);
        // Events after a resume all come after what was seen: no event twice, none out of order.
        const strictlyIncreasing = seqs.every((s, i) =>
          i === 0 || s > seqs[i - 1]! ||
          (s === seqs[i - 1] && v.seen[i]!.type === "assistantChunk")
        );
        assert(strictlyIncreasing, `${v.chatId}: ${seqs.join(",")}`);
        // The streamed text, rebuilt from live chunks and resume snapshots, is the whole answer.
        assertEquals(applyChunks(v.seen), words.join(""));
        const replies = v.seen.filter((e) => e.type === "message" && e.sender === "Terra");
        assertEquals(replies.length, 1);
      }
      assert(visitors.reduce((n, v) => n + v.reconnects, 0) >= 350, "the storm happened");
    } finally {
      await Promise.all(visitors.map((v) => v.socket?.close()));
      await worker.close();
    }
  });
});
