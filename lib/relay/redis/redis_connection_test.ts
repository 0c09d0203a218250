import { assert, assertEquals, assertRejects } from "../../../tests/_assert.ts";
import { eventually } from "../../../tests/_clients.ts";
import { startRedis } from "../../../tests/_redis_process.ts";
import { RedisConnection } from "./redis_connection.ts";
import { parseRedisUrl } from "./redis_url.ts";
import { StoreUnavailableError } from "./store_unavailable_error.ts";

Deno.test("RedisConnection survives a Redis SIGKILL: writes fail typed, then it reconnects", async () => {
  const redis = await startRedis({ durability: "always" });
  const connection = new RedisConnection(parseRedisUrl(redis.url), {
    reconnectBaseMs: 20,
    reconnectCapMs: 200,
  });
  try {
    await connection.connect();
    assertEquals(connection.health().up, true);
    assertEquals(await connection.command(["INCR", "acked"]), 1);

    await redis.kill();
    const error = await assertRejects(() => connection.command(["INCR", "acked"]));
    assert(error instanceof StoreUnavailableError, `typed error, got ${error.name}`);
    const refused = error.toRelayError();
    assertEquals([refused.status, refused.code], [503, "store_unavailable"]);
    assert(refused.retryAfterSeconds! > 0, "Retry-After is set");
    await eventually(() => !connection.health().up, "health says down");

    await redis.start();
    await eventually(() => connection.up, "the connection is back");
    assertEquals(connection.health().up, true);
    assert(connection.health().outages >= 1, "the outage is counted");
    // appendfsync always: the write acknowledged before the SIGKILL is still there.
    assertEquals(await connection.command(["INCR", "acked"]), 2);
  } finally {
    await connection.close();
    await redis.dispose();
  }
});

Deno.test("RedisConnection.eval() reloads its script after a restart emptied the cache", async () => {
  const redis = await startRedis();
  const connection = new RedisConnection(parseRedisUrl(redis.url), {
    reconnectBaseMs: 20,
    reconnectCapMs: 200,
  });
  const lua = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
  try {
    await connection.connect();
    assertEquals(await connection.eval(lua, ["n"], ["2"]), 2);
    await redis.stop();
    await redis.start();
    await eventually(() => connection.up, "the connection is back");
    assertEquals(await connection.eval(lua, ["n"], ["3"]), 3);
  } finally {
    await connection.close();
    await redis.dispose();
  }
});

Deno.test("RedisConnection authenticates with the password from REDIS_PASSWORD", async () => {
  const redis = await startRedis({ password: "test-password-1" });
  const good = new RedisConnection(parseRedisUrl(redis.url, "test-password-1"));
  try {
    await good.connect();
    assertEquals(await good.command(["PING"]), "PONG");
  } finally {
    await good.close();
    await redis.dispose();
  }
});

Deno.test("RedisConnection.connect() gives up its wait with a typed error when Redis is away", async () => {
  const redis = await startRedis();
  await redis.stop();
  const connection = new RedisConnection(parseRedisUrl(redis.url), { reconnectCapMs: 50 });
  try {
    const error = await assertRejects(() => connection.connect(300));
    assert(error instanceof StoreUnavailableError, `typed error, got ${error.name}`);
  } finally {
    await connection.close();
    await redis.dispose();
  }
});

Deno.test("The shipped Redis config (systemd/redis-terrarium.conf) keeps every acknowledged write through a SIGKILL", async () => {
  const redis = await startRedis({
    configFile: new URL("../../../systemd/redis-terrarium.conf", import.meta.url).pathname,
  });
  const connection = new RedisConnection(parseRedisUrl(redis.url), {
    reconnectBaseMs: 20,
    reconnectCapMs: 200,
  });
  try {
    await connection.connect();
    assertEquals(await connection.command(["CONFIG", "GET", "appendfsync"]), {
      appendfsync: "always",
    });
    // Acknowledged writes, then a crash right after the last acknowledgement.
    for (let i = 0; i < 50; i++) await connection.command(["RPUSH", "acked", String(i)]);
    await redis.kill();
    await redis.start();
    await eventually(() => connection.up, "the connection is back");
    assertEquals(await connection.command(["LLEN", "acked"]), 50);
  } finally {
    await connection.close();
    await redis.dispose();
  }
});
