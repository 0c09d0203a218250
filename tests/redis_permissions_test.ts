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

Deno.test("rediss:// works with a private CA given to Deno (DENO_CERT), still only --allow-net", async () => {
  const redis = await startRedis({ tls: true });
  const run = (env: Record<string, string>, waitMs: number) =>
    spawnDeno([
      "run",
      "--no-prompt",
      `--allow-net=127.0.0.1:${redis.port}`,
      new URL("./_redis_probe.ts", import.meta.url).pathname,
      redis.url,
      String(waitMs),
    ], env);
  const trusted = run({ DENO_CERT: redis.caFile }, 10_000);
  try {
    assertEquals(redis.url.startsWith("rediss://"), true);
    await trusted.waitForLine("probe: INCR -> 1");
    assertEquals((await trusted.status).code, 0);
  } finally {
    await trusted.kill();
  }
  // Without the CA the certificate is refused: the probe never gets an answer.
  const untrusted = run({}, 1_000);
  try {
    assertEquals((await untrusted.status).code === 0, false);
    assertEquals(untrusted.lines.some((line) => line.includes("probe: INCR")), false);
  } finally {
    await untrusted.kill();
    await redis.dispose();
  }
});
