import { assertEquals } from "../tests/_assert.ts";
import { Backoff, backoffDelay } from "./backoff.ts";

Deno.test("backoffDelay() grows from 500 ms to a 30 s cap, with full jitter", () => {
  const top = () => 0.999_999;
  assertEquals(
    [1, 2, 3, 6, 7, 8, 1000].map((attempt) => backoffDelay(attempt, { random: top })),
    [499, 999, 1999, 15999, 29999, 29999, 29999],
  );
  assertEquals(backoffDelay(5, { random: () => 0 }), 0);
  assertEquals(backoffDelay(2, { random: () => 0.5 }), 500);
});

Deno.test("Backoff counts attempts and starts over after reset()", () => {
  const backoff = new Backoff({ baseMs: 100, capMs: 1_000, random: () => 0.5 });
  assertEquals([backoff.next(), backoff.next(), backoff.next(), backoff.attempt], [
    50,
    100,
    200,
    3,
  ]);
  backoff.reset();
  assertEquals([backoff.next(), backoff.attempt], [50, 1]);
});
