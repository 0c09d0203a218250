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
