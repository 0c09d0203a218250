import { assert, assertEquals } from "../tests/_assert.ts";
import { LatencyHistogram, summarize } from "./stats.ts";

/** Within the histogram's 1 % bucket precision of `expected`. */
function near(actual: number, expected: number): boolean {
  return Math.abs(actual - expected) <= expected * 0.011;
}

Deno.test("LatencyHistogram: percentiles within 1 % of the exact ones, never above the max", () => {
  const h = new LatencyHistogram();
  const values = Array.from({ length: 1000 }, (_, i) => (i + 1) / 10); // 0.1 … 100 ms
  for (const v of values) h.record(v);
  const exact = summarize(values);
  for (const p of ["p50", "p90", "p99"] as const) {
    assert(near(h.summary()[p], exact[p]), `${p}: ${h.summary()[p]} vs ${exact[p]}`);
  }
  assertEquals(h.summary().max, 100);
  assertEquals(h.percentile(100), 100);
  assertEquals(h.count, 1000);
  assert(Number.isNaN(new LatencyHistogram().percentile(50)));
});

Deno.test("LatencyHistogram: a tail of 2 % shows in p99, not in p50", () => {
  const h = new LatencyHistogram();
  for (let i = 0; i < 980; i++) h.record(2);
  for (let i = 0; i < 20; i++) h.record(80);
  assert(near(h.percentile(50), 2));
  assert(near(h.percentile(99), 80));
});

Deno.test("LatencyHistogram: merging another process's data equals recording it here", () => {
  const [a, b, both] = [new LatencyHistogram(), new LatencyHistogram(), new LatencyHistogram()];
  for (let i = 1; i <= 500; i++) {
    a.record(i / 7);
    both.record(i / 7);
  }
  for (let i = 1; i <= 300; i++) {
    b.record(i * 3);
    both.record(i * 3);
  }
  const merged = new LatencyHistogram();
  merged.add(JSON.parse(JSON.stringify(a.toJSON())));
  merged.add(JSON.parse(JSON.stringify(b.toJSON())));
  assertEquals(merged.summary(), both.summary());
  // Only non-empty buckets travel.
  assert(a.toJSON().buckets.length <= 500);
  // Bucket indexes out of range (a corrupt report) are ignored, not written past the end.
  const h = new LatencyHistogram();
  h.add({ buckets: [[-1, 5], [1e9, 5], [0.5, 5]], count: 0, sum: 0, max: 0 });
  assertEquals(h.count, 0);
});
