import { assert, assertEquals } from "../../../tests/_assert.ts";
import { type RedisProcess, startRedis } from "../../../tests/_redis_process.ts";
import { FailureBudget } from "../failure_budget.ts";
import { RedisConnection } from "./redis_connection.ts";
import { delayForFailures, RedisFailureBudget } from "./redis_failure_budget.ts";
import { RedisLockout } from "./redis_lockout.ts";
import { RedisRateLimiter } from "./redis_rate_limiter.ts";
import { RedisSocketCount } from "./redis_socket_count.ts";
import { parseRedisUrl } from "./redis_url.ts";

/** Two relays' connections to one Redis, and cleanup. */
async function twoRelays(redis: RedisProcess) {
  const open = async () => {
    const connection = new RedisConnection(parseRedisUrl(redis.url), {
      reconnectBaseMs: 20,
      reconnectCapMs: 200,
    });
    await connection.connect(10_000);
    return connection;
  };
  const a = await open();
  const b = await open();
  return { a, b, close: async () => void await Promise.all([a.close(), b.close()]) };
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

Deno.test("RedisRateLimiter counts one window across two relays, also under concurrent hits", async () => {
  const redis = await startRedis();
  const { a, b, close } = await twoRelays(redis);
  try {
    const limits = { windowMs: 60_000, max: 5 };
    const onA = new RedisRateLimiter(a, "ip", limits);
    const onB = new RedisRateLimiter(b, "ip", limits);
    const waits = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? onA : onB).hit("192.0.2.1")),
    );
    assertEquals(waits.filter((w) => w === 0).length, 5, "exactly the limit passes");
    assert(waits.every((w) => w === 0 || (w > 0 && w <= 60)), `waits: ${waits}`);
    assertEquals(await onB.hit("192.0.2.2"), 0, "another key has its own window");
    assertEquals(await new RedisRateLimiter(a, "chat", limits).hit("192.0.2.1"), 0, "and name");
  } finally {
    await close();
    await redis.dispose();
  }
});

Deno.test("RedisRateLimiter starts a new window when the old one ends", async () => {
  const redis = await startRedis();
  const { a, close } = await twoRelays(redis);
  try {
    const limiter = new RedisRateLimiter(a, "ip", { windowMs: 300, max: 1 });
    assertEquals(await limiter.hit("k"), 0);
    assert(await limiter.hit("k") > 0, "over the limit");
    await eventually(async () => await limiter.hit("k") === 0, "the window ends");
  } finally {
    await close();
    await redis.dispose();
  }
});

Deno.test("RedisRateLimiter falls back to the relay's own limits while Redis is down", async () => {
  const redis = await startRedis();
  const { a, close } = await twoRelays(redis);
  try {
    const limiter = new RedisRateLimiter(a, "ip", { windowMs: 60_000, max: 2 });
    await redis.kill();
    assertEquals([await limiter.hit("k"), await limiter.hit("k")], [0, 0]);
    assert(await limiter.hit("k") > 0, "the in-memory limit still holds");
  } finally {
    await close();
    await redis.dispose();
  }
});

Deno.test("delayForFailures() follows FailureBudget.delayMs() for every count", () => {
  for (const budget of [1, 7, 100]) {
    const local = new FailureBudget(budget, 60_000);
    for (let failures = 0; failures <= budget * 3 + 20; failures++) {
      assertEquals(
        delayForFailures(failures, budget),
        local.delayMs(1_000),
        `${failures}/${budget}`,
      );
      local.record(1_000);
    }
  }
});

Deno.test("RedisFailureBudget sums wrong codes from two relays and slows both past the budget", async () => {
  const redis = await startRedis();
  const { a, b, close } = await twoRelays(redis);
  try {
    const limits = { budget: 10, windowMs: 60_000 };
    const onA = new RedisFailureBudget(a, limits);
    const onB = new RedisFailureBudget(b, limits);
    for (let i = 0; i < 6; i++) await Promise.all([onA.record(), onB.record()]);
    assertEquals([await onA.failures(), await onB.failures()], [12, 12]);
    assertEquals(await onA.delayMs(), delayForFailures(12, 10));
    assert(await onB.delayMs() > 0, "relay B is slowed by relay A's failures too");
  } finally {
    await close();
    await redis.dispose();
  }
});

Deno.test("RedisLockout locks a client key out on every relay; other keys go on", async () => {
  const redis = await startRedis();
  const { a, b, close } = await twoRelays(redis);
  try {
    const limits = { maxFailures: 3, lockoutSeconds: 60 };
    const onA = new RedisLockout(a, limits);
    const onB = new RedisLockout(b, limits);
    assertEquals(await onA.recordFailure("203.0.113.7"), 0);
    assertEquals(await onB.recordFailure("203.0.113.7"), 0);
    assertEquals(await onA.lockedForMs("203.0.113.7"), 0);
    assert(await onB.recordFailure("203.0.113.7") > 0, "the third wrong code locks");
    assert(await onA.lockedForMs("203.0.113.7") > 0, "relay A refuses it too");
    assertEquals(await onA.lockedForMs("203.0.113.8"), 0);
  } finally {
    await close();
    await redis.dispose();
  }
});

Deno.test("RedisSocketCount caps sockets per key across relays; a dead relay's leases run out", async () => {
  const redis = await startRedis();
  const { a, b, close } = await twoRelays(redis);
  const onA = new RedisSocketCount(a, { relayId: "A", max: 2, leaseMs: 400, renewMs: 100 });
  const onB = new RedisSocketCount(b, { relayId: "B", max: 2, leaseMs: 400, renewMs: 60_000 });
  try {
    const leases = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? onA : onB).acquire("198.51.100.9")),
    );
    assertEquals(leases.filter((lease) => lease !== null).length, 2, "racing relays: the cap");

    const first = await onA.acquire("198.51.100.1");
    assert(first && await onB.acquire("198.51.100.1"), "one on each relay");
    assertEquals(await onA.acquire("198.51.100.1"), null, "the key is at its cap");
    await first.release();
    await first.release();
    assert(await onA.acquire("198.51.100.1"), "a released place is free again");
    assertEquals(await onB.acquire("198.51.100.1"), null);

    // Relay B "dies" holding its sockets (it stops renewing); relay A renews its own.
    onB.close();
    await eventually(async () => await onA.count("198.51.100.1") <= 1, "B's lease runs out");
    assertEquals(await onA.count("198.51.100.1"), 1, "A's socket is still counted");
    assert(await onA.acquire("198.51.100.1"), "the dead relay's place is free");
  } finally {
    onA.close();
    onB.close();
    await close();
    await redis.dispose();
  }
});

Deno.test("RedisSocketCount counts again, once Redis is back, sockets opened or lost during an outage", async () => {
  const redis = await startRedis(); // no persistence: a restart loses the counts
  const { a, close } = await twoRelays(redis);
  const onA = new RedisSocketCount(a, { relayId: "A", max: 3, leaseMs: 2_000, renewMs: 100 });
  try {
    const before = await onA.acquire("198.51.100.4");
    await redis.kill();
    const during = await onA.acquire("198.51.100.4");
    assert(before && during, "granted while Redis is down (SocketSlots still caps)");
    await during.release(); // Redis is away: nothing to remove, and no rejection
    const kept = await onA.acquire("198.51.100.4");
    await redis.start();
    await eventually(async () => {
      try {
        return await onA.count("198.51.100.4") === 2;
      } catch {
        return false; // still reconnecting
      }
    }, "the open sockets are counted again");
    assert(kept);
  } finally {
    onA.close();
    await close();
    await redis.dispose();
  }
});

Deno.test("RedisLockout answers from this relay's own count while Redis is down", async () => {
  const redis = await startRedis();
  const { a, close } = await twoRelays(redis);
  try {
    const lockout = new RedisLockout(a, { maxFailures: 3, lockoutSeconds: 60 });
    assertEquals(await lockout.recordFailure("192.0.2.5"), 0);
    await redis.kill();
    assertEquals(await lockout.recordFailure("192.0.2.5"), 0);
    assert(await lockout.recordFailure("192.0.2.5") > 0, "the third, counted in memory, locks");
    assert(await lockout.lockedForMs("192.0.2.5") > 0);
    assertEquals(await lockout.lockedForMs("192.0.2.6"), 0, "other keys go on");
  } finally {
    await close();
    await redis.dispose();
  }
});
