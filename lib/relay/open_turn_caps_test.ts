import { assertEquals, assertThrows } from "../../tests/_assert.ts";
import { RelayError } from "./errors.ts";
import { OpenTurnCaps } from "./open_turn_caps.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (error) {
    return (error as RelayError).code;
  }
}

Deno.test("OpenTurnCaps: reservations count before the turns are stored, per key and in total", () => {
  const stored = new Map<string, number>();
  const caps = new OpenTurnCaps({ perClient: 2, total: 3 }, {
    total: () => [...stored.values()].reduce((a, b) => a + b, 0),
    ofClient: (key) => stored.get(key) ?? 0,
  });
  // Two requests racing for the same key: the third is refused although none is stored yet.
  const a1 = caps.reserve("a");
  caps.reserve("a");
  assertEquals(codeOf(() => caps.reserve("a")), "too_many_open_turns");
  // A released place (the store failed) is free again.
  a1();
  a1();
  caps.reserve("a");
  caps.reserve("b");
  const error = assertThrows(() => caps.reserve("c")) as RelayError;
  assertEquals([error.code, error.status, error.retryAfterSeconds], ["queue_full", 429, 30]);
  assertEquals(error.message.endsWith("."), true, error.message);
});
