import { assert, assertEquals } from "../tests/_assert.ts";
import { better, DeliveryTracker, type FanoutResult } from "./fanout.ts";

/** A relay chunk frame as a visitor socket gets it, carrying the benchmark's marker. */
const frame = (id: number, sentAt: number) =>
  JSON.stringify({ type: "chunk", seq: id + 1, content: `c${id}@${sentAt.toFixed(3)}` });

Deno.test("DeliveryTracker: latency, completions and per-socket order of numbered sockets", () => {
  const tracker = new DeliveryTracker();
  tracker.reset(2, 10);
  tracker.frame('{"type":"ready"}', 5, 0);
  tracker.frame(frame(0, 100), 101, 0);
  tracker.frame(frame(0, 100), 102, 1);
  tracker.frame(frame(1, 110), 111, 1);
  tracker.frame(frame(1, 110), 113, 0);
  assertEquals(tracker.deliveries, 4);
  assertEquals(tracker.completed, 2);
  assertEquals(tracker.misordered, 0);
  assertEquals(tracker.histogram.count, 4);
  assert(Math.abs(tracker.histogram.summary().max - 3) < 0.05);

  // A repeat, and a chunk after a later one, on socket 1; socket 0 unaffected.
  tracker.frame(frame(1, 110), 114, 1);
  tracker.frame(frame(3, 130), 131, 1);
  tracker.frame(frame(2, 120), 132, 1);
  tracker.frame(frame(2, 120), 121, 0);
  assertEquals(tracker.misordered, 2);
  // Ids past the phase's chunks (a late frame of another phase) are not counted.
  tracker.frame(frame(10, 0), 1, 0);
  assertEquals(tracker.deliveries, 8);

  tracker.reset(2, 10);
  assertEquals([tracker.misordered, tracker.deliveries, tracker.completed], [0, 0, 0]);
  // Frames from sockets without a number are counted, their order is not checked.
  tracker.frame(frame(1, 0), 1);
  tracker.frame(frame(0, 0), 1);
  assertEquals([tracker.misordered, tracker.deliveries], [0, 2]);
});

Deno.test("better: more deliveries/s at saturation, lower p50 at a fixed rate", () => {
  const phase = (mode: "rate" | "saturate", p50: number, perSecond: number) =>
    ({
      mode,
      deliveriesPerSecond: perSecond,
      latency: { count: 1, p50, p90: p50, p99: p50, max: p50, mean: p50 },
    }) as FanoutResult;
  const [slow, fast] = [phase("saturate", 1, 100), phase("saturate", 2, 200)];
  assertEquals(better(slow, fast), fast);
  assertEquals(better(fast, slow), fast);
  const [low, high] = [phase("rate", 0.5, 20), phase("rate", 0.9, 20)];
  assertEquals(better(high, low), low);
  assertEquals(better(low, high), low);
});
