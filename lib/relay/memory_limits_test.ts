import { assert, assertEquals } from "../../tests/_assert.ts";
import { FailureBudget } from "./failure_budget.ts";
import {
  memoryFailureBudget,
  MemoryLockout,
  memoryRateLimit,
  UNCOUNTED_SOCKETS,
} from "./memory_limits.ts";
import { RateLimiter } from "./rate_limiter.ts";

Deno.test("MemoryLockout locks a key at maxFailures within the period, for the period", async () => {
  const clock = { now: 0 };
  const lockout = new MemoryLockout({ maxFailures: 3, lockoutSeconds: 60 }, {
    now: () => clock.now,
  });
  assertEquals(await lockout.recordFailure("k"), 0);
  assertEquals(await lockout.recordFailure("k"), 0);
  assertEquals(await lockout.lockedForMs("k"), 0);
  assertEquals(await lockout.recordFailure("k"), 60_000, "the third locks");
  clock.now = 10_000;
  assertEquals(await lockout.lockedForMs("k"), 50_000);
  assertEquals(await lockout.lockedForMs("other"), 0, "other keys are not affected");
  clock.now = 60_000;
  assertEquals(await lockout.lockedForMs("k"), 0, "the lockout ends");
});

Deno.test("MemoryLockout counts failures from the first one: an old failure does not add up", async () => {
  const clock = { now: 0 };
  const lockout = new MemoryLockout({ maxFailures: 2, lockoutSeconds: 60 }, {
    now: () => clock.now,
  });
  await lockout.recordFailure("k");
  clock.now = 61_000;
  assertEquals(await lockout.recordFailure("k"), 0, "a new window starts");
  assert(await lockout.recordFailure("k") > 0);
});

Deno.test("memoryRateLimit() and memoryFailureBudget() answer as the classes they wrap", async () => {
  const limit = memoryRateLimit(new RateLimiter(60_000, 2));
  assertEquals([await limit.hit("a"), await limit.hit("a")], [0, 0]);
  assert(await limit.hit("a") > 0);
  assertEquals(await limit.hit("b"), 0);

  const budget = memoryFailureBudget(new FailureBudget(1, 60_000), () => 1_000);
  await budget.record();
  assertEquals([await budget.failures(), await budget.delayMs()], [1, 0]);
  await budget.record();
  assert(await budget.delayMs() > 0, "past the budget");
});

Deno.test("UNCOUNTED_SOCKETS grants every socket: on one relay SocketSlots is the count", async () => {
  for (let i = 0; i < 100; i++) {
    const lease = await UNCOUNTED_SOCKETS.acquire("k");
    assert(lease);
    await lease.release();
  }
  assertEquals(await UNCOUNTED_SOCKETS.count("k"), 0);
});
