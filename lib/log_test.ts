import { assertEquals } from "../tests/_assert.ts";
import { Logger, redact } from "./log.ts";

Deno.test("redact() hides secret-looking fields at any depth", () => {
  assertEquals(
    redact({ token: "t", nested: { accessCode: "c", authorization: "b" }, chatId: "a" }),
    {
      token: "[redacted]",
      nested: { accessCode: "[redacted]", authorization: "[redacted]" },
      chatId: "a",
    },
  );
});

Deno.test("Logger writes one JSON line per event above its level", () => {
  const lines: string[] = [];
  const log = new Logger("relay", "info", (line) => lines.push(line));
  log.debug("hidden");
  log.info("shown", { serviceToken: "secret-value", n: 1 });
  assertEquals(lines.length, 1);
  const entry = JSON.parse(lines[0]!);
  assertEquals([entry.level, entry.component, entry.msg, entry.n], ["info", "relay", "shown", 1]);
  assertEquals(lines[0]!.includes("secret-value"), false);
});

Deno.test("Logger with foldWindowMs writes a repeated warning once per window, then its count", () => {
  const lines: string[] = [];
  let now = 1_000_000;
  const log = new Logger("worker", "info", (line) => lines.push(line), {
    foldWindowMs: 10_000,
    now: () => now,
  });
  for (let i = 0; i < 385; i++) log.warn("chunk not delivered", { chatId: `c${i}` });
  log.warn("another kind");
  log.info("info lines are never folded");
  log.info("info lines are never folded");
  assertEquals(lines.length, 4);
  log.flush();
  const entries = lines.map((l) => JSON.parse(l));
  assertEquals(entries.map((e) => e.msg), [
    "chunk not delivered",
    "another kind",
    "info lines are never folded",
    "info lines are never folded",
    "chunk not delivered … 384 more in the last 10 s",
  ]);
  assertEquals([entries[4].level, entries[4].repeats], ["warn", 384]);

  // After the window, the message is written in full again (with its fields).
  lines.length = 0;
  log.warn("chunk not delivered", { chatId: "first" });
  now += 10_000;
  log.warn("chunk not delivered", { chatId: "next window" });
  log.flush();
  assertEquals(lines.map((l) => JSON.parse(l).chatId), ["first", "next window"]);

  // unfolded() writes every time: for events that are rare by design.
  lines.length = 0;
  log.unfolded("warn", "agent is down");
  log.unfolded("warn", "agent is down");
  assertEquals(lines.length, 2);
});
