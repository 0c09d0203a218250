/**
 * The relay on the Redis engine (`REDIS_URL`, issue 14), as a real process with its derived
 * permissions (only the Redis host on the net besides its own port): a question survives a
 * relay SIGKILL because it is in Redis, not in the process; with Redis SIGKILLed the relay
 * stays up, refuses writes with 503 `store_unavailable` and `Retry-After`, and takes them
 * again once Redis is back, without a restart.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  chatHistory,
  eventually,
  openChatIds,
  postMessage,
  request,
  visitorToken,
  workerRequest,
} from "./_clients.ts";
import { type RelayProcess, startRelay, TEST_SECRETS } from "./_relay_process.ts";
import { type RedisProcess, startRedis } from "./_redis_process.ts";

async function metric(relay: RelayProcess, name: string): Promise<number> {
  const res = await request(`${relay.url}/metrics`, {
    headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
  });
  const line = String(res.body).split("\n").find((l) => l.startsWith(`${name} `));
  assert(line, `${name} in /metrics`);
  return Number(line.split(" ")[1]);
}

async function withRedisRelay(
  fn: (
    redis: RedisProcess,
    relay: () => RelayProcess,
    restart: () => Promise<void>,
  ) => Promise<void>,
) {
  const redis = await startRedis({ durability: "always" });
  const env = { REDIS_URL: redis.url, WEB_DIR: "" };
  let relay = await startRelay(env);
  const dirs = [relay.dir];
  try {
    await fn(redis, () => relay, async () => {
      await relay.kill();
      // A new dir: nothing of the chat is on this machine's disk, it is all in Redis.
      relay = await startRelay(env);
      dirs.push(relay.dir);
    });
  } finally {
    await relay.kill();
    await redis.dispose();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("A relay on Redis: a question acknowledged before a relay SIGKILL is answered after it", async () => {
  await withRedisRelay(async (_redis, relay, restart) => {
    assert(relay().lines.some((l) => l.includes('"store":"redis 127.0.0.1:')), "on Redis");
    const token = await visitorToken(relay().url);
    const posted = await postMessage(relay().url, token, "kept", "Are you still there?");
    assertEquals(posted.status, 201, JSON.stringify(posted.body));
    await restart();

    assertEquals(await chatHistory(relay().url, token, "kept"), [posted.body]);
    assertEquals(await openChatIds(relay().url), ["kept"]);
    const claim = await workerRequest(relay().url, "/api/worker/turns/claim", { workerId: "w" });
    assertEquals(claim.body.turn?.messageId, posted.body.id);
    const reply = await workerRequest(relay().url, "/api/chat/kept/agent", {
      content: "Yes, from Redis.",
      replyTo: claim.body.turn.id,
      leaseId: claim.body.turn.leaseId,
    });
    assertEquals(reply.status, 201, JSON.stringify(reply.body));
    assert(reply.body.seq > posted.body.seq, "sequence numbers go on rising across relays");
    const again = await workerRequest(relay().url, "/api/chat/kept/agent", {
      content: "Yes, from Redis.",
      replyTo: claim.body.turn.id,
      leaseId: claim.body.turn.leaseId,
    });
    assert(again.status < 300, `a repeated reply is idempotent: ${again.status}`);
    assertEquals((await chatHistory(relay().url, token, "kept")).map((m) => m.sender), [
      "Visitor",
      "Terra",
    ]);
  });
});

Deno.test("A relay on Redis: Redis SIGKILLed means 503 store_unavailable, then writes work again without a restart", async () => {
  await withRedisRelay(async (redis, relay) => {
    const token = await visitorToken(relay().url);
    const first = await postMessage(relay().url, token, "c", "Before the outage");
    assertEquals(first.status, 201, JSON.stringify(first.body));
    assertEquals(await metric(relay(), "terrarium_store_up"), 1);

    await redis.kill();
    const refused = await postMessage(relay().url, token, "c", "During the outage");
    assertEquals([refused.status, refused.body.code], [503, "store_unavailable"]);
    assert(Number(refused.headers.get("retry-after")) > 0, "Retry-After");
    assertEquals(await metric(relay(), "terrarium_store_up"), 0);
    const health = await request(`${relay().url}/api/health`);
    const link = health.body.chain.find((l: { id: string }) => l.id === "relay");
    assertEquals([health.status, health.body.relay, link.status], [200, "ok", "degraded"]);

    await redis.start();
    await eventually(async () => await metric(relay(), "terrarium_store_up") === 1, "Redis back");
    assert(await metric(relay(), "terrarium_store_outages") >= 1, "the outage is counted");
    const healthy = await request(`${relay().url}/api/health`);
    assertEquals(healthy.body.chain.find((l: { id: string }) => l.id === "relay").status, "online");
    const after = await postMessage(relay().url, token, "c", "After the outage");
    assertEquals(after.status, 201, JSON.stringify(after.body));
    const stored = (await chatHistory(relay().url, token, "c")).map((m) => m.content);
    assertEquals(stored, ["Before the outage", "After the outage"], "the acknowledged one kept");
  });
});
