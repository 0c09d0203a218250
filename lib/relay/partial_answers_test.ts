import { assertEquals } from "../../tests/_assert.ts";
import { isoNow } from "./partial_answers.ts";

Deno.test("isoNow() writes what Date.prototype.toISOString() writes, across seconds and days", () => {
  const starts = [0, 999, 1000, 1_796_573_810_782, Date.UTC(2026, 11, 31, 23, 59, 59, 990)];
  for (const start of starts) {
    for (let ms = start; ms < start + 2_500; ms += 7) {
      assertEquals(isoNow(ms), new Date(ms).toISOString());
    }
  }
  // Going back in time (a clock step) formats the earlier second again.
  assertEquals(isoNow(5_000), new Date(5_000).toISOString());
  assertEquals(isoNow(1_000), new Date(1_000).toISOString());
});

Deno.test("isoNow() without an argument is the current time", () => {
  const before = Date.now();
  const stamp = Date.parse(isoNow());
  const after = Date.now();
  assertEquals(stamp >= before && stamp <= after, true);
});
