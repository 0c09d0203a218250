import { assert, assertEquals } from "../../tests/_assert.ts";
import { type RedisProcess, startRedis } from "../../tests/_redis_process.ts";
import { parseRelayConfig } from "./config.ts";
import { RedisConnection } from "./redis/redis_connection.ts";
import { parseRedisUrl } from "./redis/redis_url.ts";
import { relayLimits } from "./relay_limits.ts";

const config = parseRelayConfig({
  KV_PATH: ":memory:",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
  CHAT_PASSWORD: "open-sesame-42",
  RATE_LIMIT_MAX_PER_IP: "4",
  RATE_LIMIT_MAX_PER_CHAT: "3",
  ACCESS_CODE_MAX_FAILURES: "2",
  MAX_SOCKETS_PER_IP: "2",
});

async function connect(redis: RedisProcess): Promise<RedisConnection> {
  const connection = new RedisConnection(parseRedisUrl(redis.url), {
    reconnectBaseMs: 20,
    reconnectCapMs: 200,
  });
  await connection.connect(10_000);
  return connection;
}

Deno.test("relayLimits(config, null) keeps every limit in this relay's memory", async () => {
  const limits = relayLimits(config, null);
  const other = relayLimits(config, null);
  try {
    for (let i = 0; i < 4; i++) assertEquals(await limits.ip.hit("k"), 0);
    assert(await limits.ip.hit("k") > 0, "RATE_LIMIT_MAX_PER_IP");
    assertEquals(await other.ip.hit("k"), 0, "another relay's memory is its own");
    for (let i = 0; i < 3; i++) assertEquals(await limits.chat.hit("c"), 0);
    assert(await limits.chat.hit("c") > 0, "RATE_LIMIT_MAX_PER_CHAT");
    await limits.lockout.recordFailure("k");
    assert(await limits.lockout.recordFailure("k") > 0, "ACCESS_CODE_MAX_FAILURES");
    for (let i = 0; i < 5; i++) assert(await limits.sockets.acquire("k"), "SocketSlots counts");
  } finally {
    limits.close();
    other.close();
  }
});

Deno.test("relayLimits(config, redis) on two relays counts every limit once for both", async () => {
  const redis = await startRedis();
  const [a, b] = [await connect(redis), await connect(redis)];
  const onA = relayLimits(config, a, { relayId: "A" });
  const onB = relayLimits(config, b, { relayId: "B" });
  try {
    const waits = [];
    for (let i = 0; i < 6; i++) waits.push(await (i % 2 ? onA : onB).ip.hit("k"));
    assertEquals(waits.map((w) => w > 0), [false, false, false, false, true, true]);
    assertEquals(await onA.lockout.recordFailure("k"), 0);
    assert(await onB.lockout.recordFailure("k") > 0, "the second wrong code, on B, locks");
    assert(await onA.lockout.lockedForMs("k") > 0, "A refuses it too");
    await onA.failureBudget.record();
    await onB.failureBudget.record();
    assertEquals(await onA.failureBudget.failures(), 2);
    const leases = [await onA.sockets.acquire("k"), await onB.sockets.acquire("k")];
    assert(leases.every((lease) => lease !== null));
    assertEquals(await onA.sockets.acquire("k"), null, "MAX_SOCKETS_PER_IP on both together");
    await leases[1]!.release();
    assert(await onA.sockets.acquire("k"), "a released place is free on the other relay");
  } finally {
    onA.close();
    onB.close();
    await a.close();
    await b.close();
    await redis.dispose();
  }
});

Deno.test("relayLimits(config, redis) with Redis SIGKILLed: every limit answers from memory, none throws", async () => {
  const redis = await startRedis();
  const connection = await connect(redis);
  const limits = relayLimits(config, connection);
  try {
    await limits.lockout.recordFailure("k"); // counted in Redis and in memory
    await redis.kill();
    for (let i = 0; i < 4; i++) assertEquals(await limits.ip.hit("k"), 0);
    assert(await limits.ip.hit("k") > 0, "the relay's own rate limit holds");
    assert(await limits.lockout.recordFailure("k") > 0, "the relay's own lockout holds");
    assert(await limits.lockout.lockedForMs("k") > 0);
    await limits.failureBudget.record();
    assertEquals(await limits.failureBudget.failures(), 1, "this relay's own count");
    assert(await limits.sockets.acquire("k"), "sockets fail open (SocketSlots still caps)");

    await redis.start();
    const deadline = Date.now() + 10_000;
    while (!connection.up && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assertEquals(await limits.chat.hit("fresh"), 0, "Redis counts again");
    assertEquals(await limits.lockout.lockedForMs("other"), 0);
  } finally {
    limits.close();
    await connection.close();
    await redis.dispose();
  }
});
