/**
 * Two relays on one Redis, in this process (issue 14): what a visitor and a worker see when
 * they reach different relays — a visitor socket on relay A gets, in `seq` order and once,
 * what a worker streams through relay B; a cancel on A reaches the worker socket on B; a
 * visitor that moves to B mid-answer resumes with exactly what it missed; the original
 * worker's offset-less chunks, spread over both relays as a load balancer spreads them, make
 * one text. Real processes, kills and nginx are in `relay_pair_test.ts`.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  applyChunks,
  chatHistory,
  eventually,
  type Json,
  openChatIds,
  postMessage,
  RecordingSocket,
  visitorSocket,
  visitorToken,
  workerCall,
  workerRequest,
  workerSocket,
} from "./_clients.ts";
import { type InProcessRelay, withAppRelay } from "./_relay_in_process.ts";
import { startRedis } from "./_redis_process.ts";
import type { ChatStore } from "../lib/relay/store/chat_store.ts";
import { StoreUnavailableError } from "../lib/relay/redis/store_unavailable_error.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

/** Runs `fn` with two in-process relays sharing one fresh Redis. */
async function withTwoRelays(fn: (a: InProcessRelay, b: InProcessRelay) => Promise<void>) {
  const redis = await startRedis();
  try {
    const env = { REDIS_URL: redis.url, WEB_DIR: "", TURN_LEASE_SECONDS: "3" };
    await withAppRelay(env, (a) => withAppRelay(env, (b) => fn(a, b)));
  } finally {
    await redis.dispose();
  }
}

const seqsOf = (events: Json[]) =>
  events.filter((e) => e.seq > 0 && e.type !== "ready").map((e) => e.seq as number);

function assertIncreasing(seqs: number[], what: string) {
  for (let i = 1; i < seqs.length; i++) {
    assert(seqs[i]! > seqs[i - 1]!, `${what}: seq ${seqs[i]} after ${seqs[i - 1]} (${seqs})`);
  }
}

Deno.test("a visitor on relay A gets, in order and once, the answer a worker streams through relay B", async () => {
  await withTwoRelays(async (a, b) => {
    const token = await visitorToken(a.url, TEST_SECRETS.CHAT_PASSWORD);
    const visitor = await visitorSocket(a.url, "pair-1", token);
    const worker = await workerSocket(b.url, "worker-b");
    try {
      assertEquals((await postMessage(a.url, token, "pair-1", "Hello from A")).status, 201);
      // The worker on B hears of the message asked on A, and B's queue has it.
      await worker.waitFor(
        (es) => es.some((e) => e.type === "chat_activity" && e.chatId === "pair-1"),
        10_000,
        "chat_activity on B",
      );
      assertEquals(await openChatIds(b.url), ["pair-1"]);
      const turn = (await workerCall(worker, { type: "claim", workerId: "worker-b" })).result.turn;
      assertEquals(turn.chatId, "pair-1");
      const words = Array.from({ length: 60 }, (_, i) => `w${i} `);
      let offset = 0;
      for (const word of words) {
        worker.send({ type: "chunk", chatId: "pair-1", content: word, offset, turnId: turn.id });
        offset += word.length;
      }
      const answer = words.join("");
      await visitor.waitFor(
        (es) => applyChunks(es) === answer,
        10_000,
        "the whole answer on A",
      );
      const reply = await workerCall(worker, {
        type: "reply",
        chatId: "pair-1",
        content: answer,
        replyTo: turn.id,
      });
      assert(reply.ok, JSON.stringify(reply));
      await visitor.waitFor(
        (es) => es.some((e) => e.type === "message" && e.sender === "Terra"),
        10_000,
        "the reply on A",
      );
      const chunks = visitor.events.filter((e) => e.type === "assistantChunk");
      assertEquals(chunks.length, words.length, "each chunk once");
      assertIncreasing(seqsOf(visitor.events), "events on A");
      const history = await chatHistory(b.url, token, "pair-1");
      assertEquals(history.map((m: Json) => m.sender), ["Visitor", "Terra"], "stored once");
      assertEquals(await openChatIds(a.url), [], "A's queue knows the turn is closed");
    } finally {
      await visitor.close();
      await worker.close();
    }
  });
});

Deno.test("a cancel on relay A reaches the worker socket on relay B", async () => {
  await withTwoRelays(async (a, b) => {
    const token = await visitorToken(a.url, TEST_SECRETS.CHAT_PASSWORD);
    const worker = await workerSocket(b.url, "worker-b");
    try {
      await postMessage(a.url, token, "pair-2", "Stop me");
      await eventually(async () => (await openChatIds(b.url)).includes("pair-2"), "B's queue");
      const turn = (await workerCall(worker, { type: "claim", workerId: "worker-b" })).result.turn;
      // A hears of the claim before the visitor's cancel can find the turn being answered.
      await eventually(async () => {
        const res = await workerRequest(a.url, "/api/chats/open");
        return !res.body.chatIds.includes("pair-2");
      }, "A sees the claim");
      const res = await fetch(`${a.url}/api/chat/pair-2/cancel`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      assertEquals((await res.json()).cancelled, true);
      await worker.waitFor(
        (es) => es.some((e) => e.type === "cancel" && e.turnId === turn.id),
        10_000,
        "cancel on B",
      );
    } finally {
      await worker.close();
    }
  });
});

Deno.test("a visitor that moves from relay A to relay B mid-answer resumes with exactly what it missed", async () => {
  await withTwoRelays(async (a, b) => {
    const token = await visitorToken(a.url, TEST_SECRETS.CHAT_PASSWORD);
    const worker = await workerSocket(b.url, "worker-b");
    const first = await visitorSocket(a.url, "pair-3", token);
    let second;
    try {
      await postMessage(a.url, token, "pair-3", "Tell me a story");
      await eventually(async () => (await openChatIds(b.url)).includes("pair-3"), "B's queue");
      const turn = (await workerCall(worker, { type: "claim", workerId: "worker-b" })).result.turn;
      let text = "";
      const send = (word: string) => {
        worker.send({
          type: "chunk",
          chatId: "pair-3",
          content: word,
          offset: text.length,
          turnId: turn.id,
        });
        text += word;
      };
      for (let i = 0; i < 20; i++) send(`a${i} `);
      await first.waitFor((es) => applyChunks(es) === text, 10_000, "the first part on A");
      const lastSeq = Math.max(...seqsOf(first.events));
      await first.close();
      // Streamed while the visitor is away: only in Redis (the write-through is 250 ms).
      for (let i = 0; i < 20; i++) send(`b${i} `);
      second = await visitorSocket(b.url, "pair-3", token, lastSeq);
      for (let i = 0; i < 20; i++) send(`c${i} `);
      const seen = applyChunks(first.events);
      await second.waitFor((es) => applyChunks(es, "answer", seen) === text, 10_000, "resumed");
      assertIncreasing(seqsOf(second.events), "events on B");
      assert(seqsOf(second.events).every((seq) => seq > lastSeq), "nothing seen twice");
    } finally {
      await first.close();
      await second?.close();
      await worker.close();
    }
  });
});

Deno.test("the original worker's offset-less chunks, spread over both relays, make one answer", async () => {
  await withTwoRelays(async (a, b) => {
    const token = await visitorToken(a.url, TEST_SECRETS.CHAT_PASSWORD);
    const onA = await visitorSocket(a.url, "pair-4", token);
    const onB = await visitorSocket(b.url, "pair-4", token);
    try {
      await postMessage(a.url, token, "pair-4", "Hi");
      const words = Array.from({ length: 30 }, (_, i) => `x${i} `);
      // Round robin, one request at a time, as the original worker posts through nginx.
      for (const [i, word] of words.entries()) {
        const relay = i % 2 === 0 ? a : b;
        const res = await workerRequest(relay.url, "/api/chat/pair-4/agent-chunk", {
          content: word,
          done: false,
        });
        assertEquals(res.status, 200, JSON.stringify(res.body));
      }
      const answer = words.join("");
      for (const socket of [onA, onB]) {
        await socket.waitFor((es) => applyChunks(es) === answer, 10_000, "one text");
        assertIncreasing(seqsOf(socket.events), "events");
      }
    } finally {
      await onA.close();
      await onB.close();
    }
  });
});

Deno.test("open-turn caps and queue positions are counted across both relays", async () => {
  const redis = await startRedis();
  try {
    const env = { REDIS_URL: redis.url, WEB_DIR: "", MAX_OPEN_TURNS_PER_CLIENT: "2" };
    await withAppRelay(env, (a) =>
      withAppRelay(env, async (b) => {
        const token = await visitorToken(a.url, TEST_SECRETS.CHAT_PASSWORD);
        assertEquals((await postMessage(a.url, token, "cap-1", "one")).status, 201);
        // Asked on B: the chat ahead of it was asked on A.
        const waiting = await visitorSocket(b.url, "cap-2", token);
        assertEquals((await postMessage(b.url, token, "cap-2", "two")).status, 201);
        await waiting.waitFor(
          (es) => es.some((e) => e.type === "workerState" && e.queuePosition === 1),
          10_000,
          "1 chat ahead",
        );
        await waiting.close();
        const third = await postMessage(b.url, token, "cap-3", "three");
        assertEquals(third.status, 429);
        assertEquals(third.body.code, "too_many_open_turns");
        const onA = await postMessage(a.url, token, "cap-3", "three");
        assertEquals(onA.body.code, "too_many_open_turns");
      }));
  } finally {
    await redis.dispose();
  }
});

Deno.test("a visitor message asked on relay A while relay B streams lands in order between the chunks", async () => {
  await withTwoRelays(async (a, b) => {
    const token = await visitorToken(a.url, TEST_SECRETS.CHAT_PASSWORD);
    const visitor = await visitorSocket(a.url, "pair-5", token);
    const worker = await workerSocket(b.url, "worker-b");
    try {
      await postMessage(a.url, token, "pair-5", "First question");
      await eventually(async () => (await openChatIds(b.url)).includes("pair-5"), "B's queue");
      const turn = (await workerCall(worker, { type: "claim", workerId: "worker-b" })).result.turn;
      let text = "";
      const streaming = (async () => {
        for (let i = 0; i < 150; i++) {
          const word = `w${i} `;
          worker.send({
            type: "chunk",
            chatId: "pair-5",
            content: word,
            offset: text.length,
            turnId: turn.id,
          });
          text += word;
          if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
        }
      })();
      const second = await postMessage(a.url, token, "pair-5", "A second question");
      assertEquals(second.status, 201, JSON.stringify(second.body));
      await streaming;
      await visitor.waitFor((es) => applyChunks(es) === text, 10_000, "the whole stream");
      assertIncreasing(seqsOf(visitor.events), "events on A");
      const mine = visitor.events.filter((e) => e.type === "message" && e.sender === "Visitor");
      assertEquals(mine.map((m) => m.content), ["First question", "A second question"]);
      assertEquals(mine[1].seq, second.body.seq, "the stored number is the one sent");
    } finally {
      await visitor.close();
      await worker.close();
    }
  });
});

Deno.test("the original worker's turn spread over both relays: one stored reply, the original page gets every frame in order", async () => {
  await withTwoRelays(async (a, b) => {
    const token = await visitorToken(a.url, TEST_SECRETS.CHAT_PASSWORD);
    const original = new RecordingSocket(
      `${
        a.url.replace("http", "ws")
      }/api/chat?chatId=pair-6&accessCode=${TEST_SECRETS.CHAT_PASSWORD}`,
    );
    try {
      await original.opened;
      await postMessage(a.url, token, "pair-6", "Hi");
      const chunk = (relay: InProcessRelay, content: string, done = false) =>
        workerRequest(relay.url, "/api/chat/pair-6/agent-chunk", { content, done });
      // As the original worker does, one request after the other, spread by nginx.
      assertEquals((await chunk(b, "Hello")).status, 200);
      assertEquals((await chunk(a, " there")).status, 200);
      const reply = await workerRequest(b.url, "/api/chat/pair-6/agent", {
        content: "Hello there",
      });
      assertEquals(reply.status, 201, JSON.stringify(reply.body));
      assertEquals((await chunk(a, "", true)).status, 200);
      await original.waitFor(
        (es) => es.some((e) => e.type === "assistantChunk" && e.done),
        10_000,
        "the original page's done",
      );
      const frames = original.events.filter((e) => e.type !== "workerState");
      assertEquals(
        frames.map((e) => e.type === "assistantChunk" ? `chunk:${e.content}` : e.sender),
        ["Visitor", "chunk:Hello", "chunk: there", "Terra", "chunk:"],
      );
      const history = await chatHistory(a.url, token, "pair-6");
      assertEquals(history.map((m: Json) => [m.sender, m.content]), [
        ["Visitor", "Hi"],
        ["Terra", "Hello there"],
      ]);
    } finally {
      await original.close();
    }
  });
});

Deno.test("a reply Redis stored but whose answer was lost reaches the visitor when the worker posts it again", async () => {
  const redis = await startRedis();
  try {
    const env = { REDIS_URL: redis.url, WEB_DIR: "" };
    // Relay B's first closeTurn() is written, then its answer is lost (Redis went away).
    let lose = true;
    const losingAnswer = (store: ChatStore): ChatStore =>
      new Proxy(store, {
        get(target, name, receiver) {
          if (name !== "closeTurn") {
            const value = Reflect.get(target, name, receiver);
            return typeof value === "function" ? value.bind(target) : value;
          }
          return async (...args: Parameters<ChatStore["closeTurn"]>) => {
            const written = await target.closeTurn(...args);
            if (!lose) return written;
            lose = false;
            throw new StoreUnavailableError("The connection closed before the answer came");
          };
        },
      });
    await withAppRelay(env, (a) =>
      withAppRelay(env, async (b) => {
        const token = await visitorToken(a.url, TEST_SECRETS.CHAT_PASSWORD);
        const visitor = await visitorSocket(a.url, "lost-ack", token);
        try {
          await postMessage(a.url, token, "lost-ack", "Hi");
          await eventually(async () => (await openChatIds(b.url)).includes("lost-ack"), "B");
          const claim = await workerRequest(b.url, "/api/worker/turns/claim", { workerId: "w" });
          const turn = claim.body.turn;
          const body = { content: "Hello", replyTo: turn.id, leaseId: turn.leaseId };
          const first = await workerRequest(b.url, "/api/chat/lost-ack/agent", body);
          assertEquals([first.status, first.body.code], [503, "store_unavailable"]);
          const again = await workerRequest(b.url, "/api/chat/lost-ack/agent", body);
          assertEquals([again.status, again.body.duplicate], [200, true]);
          await visitor.waitFor(
            (es) =>
              es.some((e) => e.type === "message" && e.sender === "Terra") &&
              es.some((e) => e.type === "workerState" && e.state === "responded"),
            10_000,
            "the reply and its state on A",
          );
          assertIncreasing(seqsOf(visitor.events), "events on A");
          const history = await chatHistory(a.url, token, "lost-ack");
          assertEquals(history.map((m: Json) => m.sender), ["Visitor", "Terra"], "stored once");
        } finally {
          await visitor.close();
        }
      }, { wrapStore: losingAnswer }));
  } finally {
    await redis.dispose();
  }
});
