import { assertEquals } from "./_assert.ts";
import { spawnDeno } from "./_process.ts";
import { startRedis } from "./_redis_process.ts";

Deno.test("The Redis client needs nothing but --allow-net for the Redis host", async () => {
  const redis = await startRedis();
  const probe = spawnDeno([
    "run",
    "--no-prompt",
    `--allow-net=127.0.0.1:${redis.port}`,
    new URL("./_redis_probe.ts", import.meta.url).pathname,
    redis.url,
  ]);
  try {
    await probe.waitForLine("probe: INCR -> 1");
    assertEquals((await probe.status).code, 0);
    assertEquals(probe.lines.filter((line) => /NotCapable|Requires/.test(line)), []);
  } finally {
    await probe.kill();
    await redis.dispose();
  }
});
