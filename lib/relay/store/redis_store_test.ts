import { assert, assertEquals, assertRejects } from "../../../tests/_assert.ts";
import { startRedis } from "../../../tests/_redis_process.ts";
import { RedisConnection } from "../redis/redis_connection.ts";
import { parseRedisUrl } from "../redis/redis_url.ts";
import { StoreUnavailableError } from "../redis/store_unavailable_error.ts";
import type { ChatStore } from "./chat_store.ts";
import { redisStore } from "./redis_store.ts";
import { runStoreConformance } from "./store_conformance.ts";

/** A store on its own connection to `url`, connected. */
async function open(url: string): Promise<ChatStore> {
  const connection = new RedisConnection(parseRedisUrl(url), {
    reconnectBaseMs: 20,
    reconnectCapMs: 200,
  });
  await connection.connect(10_000);
  return redisStore(connection);
}

// A reopen is a new connection, as a relay restart (or a second relay) is.
runStoreConformance("redis_store", async () => {
  const redis = await startRedis();
  let store = await open(redis.url);
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await open(redis.url);
      return store;
    },
    dispose: async () => {
      await store.close();
      await redis.dispose();
    },
  };
});

// A reopen SIGKILLs Redis and starts it again on its append-only file (appendfsync always):
// whatever a call acknowledged before the crash is there after it.
runStoreConformance("redis_store (Redis SIGKILLed on reopen)", async () => {
  const redis = await startRedis({ durability: "always" });
  let store = await open(redis.url);
  return {
    store,
    reopen: async () => {
      await store.close();
      await redis.kill();
      await redis.start();
      store = await open(redis.url);
      return store;
    },
    dispose: async () => {
      await store.close();
      await redis.dispose();
    },
  };
});

const AT = "2026-01-01T00:00:00.000Z";

Deno.test("redis_store: a chat's keys share its hash tag; a write while Redis is down is a 503", async () => {
  const redis = await startRedis();
  const connection = new RedisConnection(parseRedisUrl(redis.url), {
    reconnectBaseMs: 20,
    reconnectCapMs: 200,
  });
  await connection.connect(10_000);
  const store = redisStore(connection);
  try {
    const message = {
      id: "m1",
      chatId: "c1",
      sender: "Visitor" as const,
      content: "hi",
      createdAt: AT,
      seq: 1,
    };
    const chat = {
      id: "c1",
      createdAt: AT,
      lastActivityAt: AT,
      clientIp: "192.0.2.1",
      userAgent: "t",
    };
    const turn = {
      id: "m1",
      chatId: "c1",
      messageId: "m1",
      createdAtMs: 1,
      status: "pending" as const,
      attempt: 0,
      leaseId: null,
      workerId: null,
      leaseExpiresAtMs: 0,
      cancelRequested: false,
      replySeq: null,
    };
    assert(await store.putVisitorMessage(chat, message, turn));
    await store.setWorkerState({
      type: "workerState",
      chatId: "c1",
      state: "queued",
      detail: "",
      updatedAt: AT,
      seq: 2,
    });
    const keys = await connection.command<string[]>(["KEYS", "*"]);
    const chatOwn = keys.filter((key) => key.includes("c1") && !key.includes("turn_chat"));
    assert(chatOwn.length >= 5, `the chat's keys: ${keys}`);
    assertEquals(chatOwn.filter((key) => !key.includes("{c1}")), []);

    await redis.kill();
    const error = await assertRejects(() =>
      store.setPartials([{
        chatId: "c1",
        partial: {
          turnId: "m1",
          seq: 3,
          texts: { answer: "x", reasoning: "", tool: "" },
          done: false,
          updatedAt: AT,
        },
      }])
    );
    assert(error instanceof StoreUnavailableError, `typed, got ${error.name}`);
    assertEquals(error.toRelayError().status, 503);
  } finally {
    await store.close();
    await redis.dispose();
  }
});

Deno.test("redis_store: two relays on one Redis share one sequence, one queue and one winner per turn", async () => {
  const redis = await startRedis();
  const a = await open(redis.url);
  const b = await open(redis.url);
  try {
    // Sequence numbers drawn on both relays, interleaved: all distinct, rising in call order.
    const seqs: number[] = [];
    for (let i = 0; i < 20; i++) seqs.push(await (i % 2 ? a : b).nextSeq("c1"));
    assertEquals(seqs, [...seqs].sort((x, y) => x - y));
    assertEquals(new Set(seqs).size, 20);

    const message = {
      id: "m1",
      chatId: "c1",
      sender: "Visitor" as const,
      content: "hi",
      createdAt: AT,
      seq: await a.nextSeq("c1"),
    };
    const chat = {
      id: "c1",
      createdAt: AT,
      lastActivityAt: AT,
      clientIp: "192.0.2.1",
      userAgent: "t",
    };
    const turn = {
      id: "m1",
      chatId: "c1",
      messageId: "m1",
      createdAtMs: 1,
      status: "pending" as const,
      attempt: 0,
      leaseId: null,
      workerId: null,
      leaseExpiresAtMs: 0,
      cancelRequested: false,
      replySeq: null,
    };
    assert(await a.putVisitorMessage(chat, message, turn));
    // Relay B sees relay A's question in the shared queue.
    const [open] = await b.listOpenTurns();
    assertEquals(open?.turn.id, "m1");

    // Workers on both relays claim it with the version they read: one wins.
    const claims = await Promise.all([
      a.updateTurn({ ...turn, status: "leased", leaseId: "on-a", attempt: 1 }, open!.version),
      b.updateTurn({ ...turn, status: "leased", leaseId: "on-b", attempt: 1 }, open!.version),
    ]);
    assertEquals(claims.filter((v) => v !== null).length, 1);
    // The lease expires and is handed to a worker on the other relay.
    const leased = (await a.getTurn("m1"))!;
    const loser = leased.turn.leaseId === "on-a" ? b : a;
    const handed = await loser.updateTurn(
      { ...leased.turn, leaseId: "handed-over", attempt: 2 },
      leased.version,
    );
    assert(handed, "the other relay takes the lease over");
    // Both relays post the reply under the version they hold: it is stored once.
    const seq = await b.nextSeq("c1");
    const reply = { ...message, id: "r1", sender: "Terra" as const, content: "hello", seq };
    const done = { ...leased.turn, leaseId: "handed-over", status: "done" as const, replySeq: seq };
    const closes = await Promise.all([
      a.closeTurn(done, handed, { messages: [reply] }),
      b.closeTurn(done, handed, { messages: [reply] }),
    ]);
    assertEquals(closes.filter((v) => v !== null).length, 1);
    assertEquals((await a.listMessages("c1")).map((m) => m.sender), ["Visitor", "Terra"]);
    assertEquals(await b.listOpenTurns(), []);
  } finally {
    await a.close();
    await b.close();
    await redis.dispose();
  }
});
