import { assert, assertEquals, assertRejects } from "../../../tests/_assert.ts";
import { startRedis } from "../../../tests/_redis_process.ts";
import { RelayError } from "../errors.ts";
import { RedisConnection } from "../redis/redis_connection.ts";
import { parseRedisUrl } from "../redis/redis_url.ts";
import type { TurnRecord } from "./chat_store.ts";
import { RedisOpenTurnCaps } from "./redis_open_turn_caps.ts";
import { redisStore } from "./redis_store.ts";

const AT = "2026-01-01T00:00:00.000Z";

/** Two relays' connections to one Redis: a store on the first, and cleanup. */
async function setUp() {
  const redis = await startRedis();
  const open = async () => {
    const connection = new RedisConnection(parseRedisUrl(redis.url));
    await connection.connect(10_000);
    return connection;
  };
  const a = await open();
  const b = await open();
  const store = redisStore(a);
  /** Stores a visitor message from `clientKey` with its open turn. */
  const ask = async (chatId: string, clientKey: string, seq = 1) => {
    const message = {
      id: `${chatId}-${seq}`,
      chatId,
      sender: "Visitor" as const,
      content: "q",
      createdAt: AT,
      seq,
    };
    const turn: TurnRecord = {
      id: message.id,
      chatId,
      messageId: message.id,
      createdAtMs: seq,
      status: "pending",
      attempt: 0,
      leaseId: null,
      workerId: null,
      leaseExpiresAtMs: 0,
      cancelRequested: false,
      replySeq: null,
      clientKey,
    };
    const chat = {
      id: chatId,
      createdAt: AT,
      lastActivityAt: AT,
      clientIp: clientKey,
      userAgent: "t",
    };
    const version = await store.putVisitorMessage(chat, message, turn);
    assert(version);
    return { turn, version };
  };
  return {
    a,
    b,
    store,
    ask,
    close: async () => {
      await store.close();
      await b.close();
      await redis.dispose();
    },
  };
}

const code = (error: Error) => (error as RelayError).code;

Deno.test("RedisOpenTurnCaps counts a client's stored turns and reservations on every relay", async () => {
  const { a, b, store, ask, close } = await setUp();
  try {
    const limits = { perClient: 2, total: 100 };
    const onA = new RedisOpenTurnCaps(a, limits);
    const onB = new RedisOpenTurnCaps(b, limits);
    const asked = await ask("c1", "192.0.2.1");
    const reserved = await onA.reserve("192.0.2.1");
    const refused = await assertRejects(() => onB.reserve("192.0.2.1"));
    assertEquals(code(refused), "too_many_open_turns");
    assertEquals((refused as RelayError).retryAfterSeconds, 15);
    await onB.reserve("192.0.2.2"); // another client key has its own places
    await reserved();
    await reserved();
    const again = await onB.reserve("192.0.2.1");
    await again();

    // The stored turn closes: its place is free for the client on any relay.
    await ask("c2", "192.0.2.1");
    await assertRejects(() => onA.reserve("192.0.2.1"));
    const done = { ...asked.turn, status: "done" as const, replySeq: 2 };
    assert(await store.closeTurn(done, asked.version, {}));
    await onA.reserve("192.0.2.1");
  } finally {
    await close();
  }
});

Deno.test("RedisOpenTurnCaps: relays racing for the last places of the queue get exactly those", async () => {
  const { a, b, ask, close } = await setUp();
  try {
    const limits = { perClient: 100, total: 5 };
    const onA = new RedisOpenTurnCaps(a, limits);
    const onB = new RedisOpenTurnCaps(b, limits);
    await ask("c1", "198.51.100.1");
    await ask("c2", "198.51.100.2");
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? onA : onB).reserve(`203.0.113.${i}`)),
    );
    const granted = results.filter((r) => r.status === "fulfilled");
    assertEquals(granted.length, 3, "five places, two taken by stored turns");
    for (const r of results) {
      if (r.status === "rejected") assertEquals(code(r.reason), "queue_full");
    }
  } finally {
    await close();
  }
});

Deno.test("RedisOpenTurnCaps: a reservation a dead relay never released lapses", async () => {
  const { a, b, close } = await setUp();
  try {
    const onA = new RedisOpenTurnCaps(a, { perClient: 1, total: 10 }, { leaseMs: 300 });
    const onB = new RedisOpenTurnCaps(b, { perClient: 1, total: 10 }, { leaseMs: 300 });
    await onA.reserve("192.0.2.9"); // never released
    await assertRejects(() => onB.reserve("192.0.2.9"));
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await onB.reserve("192.0.2.9");
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } finally {
    await close();
  }
});
