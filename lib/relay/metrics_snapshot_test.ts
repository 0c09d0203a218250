import { assertEquals } from "../../tests/_assert.ts";
import { Metrics } from "./metrics.ts";
import { LogRing } from "./metrics_snapshot.ts";

Deno.test("LogRing keeps the last lines, blanks configured secrets and accessCode values", () => {
  const ring = new LogRing(3, ["open-sesame-42", "svc-0123456789abcdef", "", "ab"]);
  for (let i = 0; i < 5; i++) ring.push(`{"msg":"line ${i}"}`);
  assertEquals(ring.lines, ['{"msg":"line 2"}', '{"msg":"line 3"}', '{"msg":"line 4"}']);
  ring.push('{"msg":"GET /api/chat?chatId=a&accessCode=guess-1&x=1","error":"open-sesame-42!"}');
  ring.push('{"msg":"token svc-0123456789abcdef-more"}');
  assertEquals(ring.lines.slice(1), [
    '{"msg":"GET /api/chat?chatId=a&accessCode=[redacted]&x=1","error":"[redacted]!"}',
    '{"msg":"token [redacted]-more"}',
  ]);
  ring.push("x".repeat(10_000));
  assertEquals(ring.lines.at(-1)!.length, 2_001);
});

Deno.test("Metrics.total sums a counter over the label sets asked for", () => {
  const m = new Metrics();
  m.counter("requests_total", "requests");
  m.inc("requests_total", { group: "visitor", status: "200" }, 3);
  m.inc("requests_total", { group: "worker", status: "503" });
  m.inc("requests_total", { group: "visitor", status: "200" });
  assertEquals(m.total("requests_total"), 5);
  assertEquals(m.total("requests_total", (l) => l.group === "visitor"), 4);
  assertEquals(m.total("requests_total", (l) => Number(l.status) >= 500), 1);
  assertEquals(m.total("missing_total"), 0);
  assertEquals(
    m.render().includes('requests_total{group="visitor",status="200"} 4\n'),
    true,
  );
});

Deno.test("Metrics.counterAt() adds to the same series inc() counts, and renders as inc() does", () => {
  const m = new Metrics();
  m.counter("requests_total", "requests");
  m.counter("seconds_total", "seconds");
  const seconds = m.counterAt("seconds_total");
  // Resolved but unused: renders as an untouched counter would.
  assertEquals(m.render().includes("seconds_total 0\n"), true);
  const visitor200 = m.counterAt("requests_total", { group: "visitor", status: "200" });
  visitor200.add();
  m.inc("requests_total", { group: "visitor", status: "200" }, 2);
  visitor200.add(3);
  seconds.add(0.25);
  assertEquals(m.total("requests_total"), 6);
  assertEquals(m.render().includes('requests_total{group="visitor",status="200"} 6\n'), true);
  assertEquals(m.render().includes("seconds_total 0.25\n"), true);
  let thrown = false;
  try {
    m.counterAt("missing_total");
  } catch (error) {
    thrown = error instanceof RangeError;
  }
  assertEquals(thrown, true);
});
