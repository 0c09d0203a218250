import { assert, assertEquals } from "../../../tests/_assert.ts";
import { startRedis } from "../../../tests/_redis_process.ts";
import { ChatLanes } from "../chat_lanes.ts";
import { RelayError } from "../errors.ts";
import { RedisChatLock } from "./redis_chat_lock.ts";
import { RedisConnection } from "./redis_connection.ts";
import { RedisLeader } from "./redis_leader.ts";
import { parseRedisUrl } from "./redis_url.ts";

async function connections(url: string, n: number): Promise<RedisConnection[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const c = new RedisConnection(parseRedisUrl(url), { reconnectBaseMs: 20, reconnectCapMs: 200 });
    await c.connect(10_000);
    out.push(c);
  }
  return out;
}

Deno.test("lanes of two relays on one chat never overlap, and other chats do not wait", async () => {
  const redis = await startRedis();
  const [a, b] = await connections(redis.url, 2);
  try {
    const lanes = [new ChatLanes(new RedisChatLock(a!)), new ChatLanes(new RedisChatLock(b!))];
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    const task = (i: number) => async () => {
      inside++;
      most = Math.max(most, inside);
      await new Promise((resolve) => setTimeout(resolve, 2));
      order.push(i);
      inside--;
    };
    const runs = Array.from({ length: 40 }, (_, i) => lanes[i % 2]!.run("chat", task(i)));
    // Another chat runs beside them on the same relays.
    let otherRan = false;
    runs.push(lanes[1]!.run("other", () => Promise.resolve(void (otherRan = true))));
    await Promise.all(runs);
    assertEquals(most, 1, "one task of the chat at a time across relays");
    assertEquals(order.length, 40);
    assert(otherRan);
    // Each relay's own tasks still run in the order they were queued.
    for (const parity of [0, 1]) {
      const mine = order.filter((i) => i % 2 === parity);
      assertEquals(mine, [...mine].sort((x, y) => x - y));
    }
  } finally {
    await a!.close();
    await b!.close();
    await redis.dispose();
  }
});

Deno.test("a lock whose holder vanished frees itself after its time to live; a waiter gives up with 503", async () => {
  const redis = await startRedis();
  const [a, b] = await connections(redis.url, 2);
  try {
    const dead = new RedisChatLock(a!, { ttlMs: 300 });
    await dead.acquire("chat"); // never released: the relay died holding it
    const patient = new RedisChatLock(b!, { waitMs: 5_000 });
    const startedAt = Date.now();
    const release = await patient.acquire("chat");
    assert(Date.now() - startedAt >= 200, "waited for the time to live");
    const impatient = new RedisChatLock(a!, { waitMs: 100 });
    const refused = await impatient.acquire("chat").catch((error) => error);
    assert(refused instanceof RelayError && refused.code === "store_busy", String(refused));
    await release();
    await (await impatient.acquire("chat"))();
  } finally {
    await a!.close();
    await b!.close();
    await redis.dispose();
  }
});

Deno.test("RedisLeader: one relay leads; another takes over when it stops renewing", async () => {
  const redis = await startRedis();
  const [a, b] = await connections(redis.url, 2);
  try {
    const leaderA = new RedisLeader(a!, "relay-a", { ttlMs: 300 });
    const leaderB = new RedisLeader(b!, "relay-b", { ttlMs: 300 });
    assertEquals(await leaderA.leads(), true);
    assertEquals(await leaderB.leads(), false);
    assertEquals(await leaderA.leads(), true, "renewed");
    await new Promise((resolve) => setTimeout(resolve, 400));
    assertEquals(await leaderB.leads(), true, "A stopped renewing");
    assertEquals(await leaderA.leads(), false);
  } finally {
    await a!.close();
    await b!.close();
    await redis.dispose();
  }
});
