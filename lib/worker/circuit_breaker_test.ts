import { assertEquals, assertThrows } from "../../tests/_assert.ts";
import { CircuitBreaker } from "./circuit_breaker.ts";

Deno.test("CircuitBreaker opens after the threshold of failures in a row", () => {
  const breaker = new CircuitBreaker(3, 1_000);
  breaker.failure(0);
  breaker.failure(0);
  breaker.success(); // a success in between resets the count
  breaker.failure(10);
  breaker.failure(10);
  assertEquals([breaker.state(10), breaker.tryAcquire(10)], ["closed", true]);
  breaker.failure(10);
  assertEquals([breaker.state(10), breaker.tryAcquire(10)], ["open", false]);
  assertEquals(breaker.retryInMs(500), 510);
});

Deno.test("CircuitBreaker admits one trial after the cooldown; its success closes it", () => {
  const breaker = new CircuitBreaker(1, 1_000);
  breaker.failure(0);
  assertEquals(breaker.tryAcquire(999), false);
  assertEquals(breaker.state(1_000), "half-open");
  assertEquals(breaker.tryAcquire(1_000), true);
  assertEquals(breaker.tryAcquire(1_001), false, "only one trial at a time");
  breaker.success();
  assertEquals([breaker.state(1_002), breaker.tryAcquire(1_002), breaker.retryInMs(1_002)], [
    "closed",
    true,
    0,
  ]);
});

Deno.test("CircuitBreaker reopens for a full cooldown when the trial fails", () => {
  const breaker = new CircuitBreaker(2, 1_000);
  breaker.failure(0);
  breaker.failure(0);
  assertEquals(breaker.tryAcquire(1_500), true);
  breaker.failure(1_600);
  assertEquals([breaker.state(2_000), breaker.tryAcquire(2_000)], ["open", false]);
  assertEquals(breaker.state(2_600), "half-open");
});

Deno.test("CircuitBreaker.release() frees the trial slot without a verdict", () => {
  const breaker = new CircuitBreaker(1, 100);
  breaker.failure(0);
  assertEquals(breaker.tryAcquire(100), true);
  breaker.release();
  assertEquals([breaker.state(100), breaker.tryAcquire(100)], ["half-open", true]);
});

Deno.test("CircuitBreaker rejects a nonsensical configuration", () => {
  assertThrows(() => new CircuitBreaker(0), "failureThreshold");
  assertThrows(() => new CircuitBreaker(3, -1), "cooldownMs");
});
