import { assert, assertEquals } from "../tests/_assert.ts";
import { summarizeStep } from "./capacity.ts";
import type { CapacityLoadResult } from "./capacity_load.ts";
import { capacityLines, capacityTable, renderCapacity } from "./capacity_report.ts";
import { perChunkTable } from "./report.ts";
import { LatencyHistogram } from "./stats.ts";
import type { FanoutResult } from "./fanout.ts";

function load(latencies: number[], over: Partial<CapacityLoadResult> = {}): CapacityLoadResult {
  const h = new LatencyHistogram();
  for (const v of latencies) h.record(v);
  return {
    chats: 50,
    visitors: 54,
    histogram: h.toJSON(),
    sent: 1000,
    scheduled: 1000,
    late: 0,
    maxLagMs: 3,
    expected: 1040,
    received: 1040,
    errors: 0,
    firstError: null,
    cpuMs: 400,
    wallMs: 1000,
    ...over,
  };
}

const server = { serverCpu: 250, windowMs: 1000, rssMib: 80 };

Deno.test("summarizeStep: sums the load processes, merges latency, reads the server per chunk", () => {
  const step = summarizeStep("relay", "socket", 100, [
    load(Array(99).fill(2).concat([90])),
    load(Array(100).fill(3), { late: 5, maxLagMs: 20 }),
  ], server);
  assertEquals([step.visitors, step.processes, step.sent, step.late], [108, 2, 2000, 5]);
  assertEquals([step.lost, step.maxLagMs, step.errors], [0, 20, 0]);
  assertEquals(step.serverCpuPercent, 25);
  assertEquals(step.serverCpuUsPerChunk, 125); // 250 ms over 2000 chunks
  assertEquals(step.deliveriesPerSecond, 2080);
  // Two processes of 40 % each on one load core: 80 % of it, the busiest at 40 %.
  assertEquals([step.generatorCpuPercent, step.busiestGeneratorPercent], [80, 40]);
  assertEquals(step.latency.count, 200);
  assert(step.verdict.holds, step.verdict.reasons.join());
});

Deno.test("summarizeStep: losses and errors of any process fail the step", () => {
  const step = summarizeStep("relay", "http", 50, [
    load([1, 2]),
    load([1], { received: 1000, errors: 2, firstError: "agent-chunk answered 429" }),
  ], server);
  assertEquals([step.lost, step.errors, step.firstError], [40, 2, "agent-chunk answered 429"]);
  assertEquals(step.verdict.reasons, ["40 lost", "2 errors"]);
});

Deno.test("capacity report: relay beside floor per count, ratio, and whose limit it was", () => {
  const relay100 = summarizeStep("relay", "socket", 100, [load([2])], server);
  const bare100 = summarizeStep("bare", "socket", 100, [load([1])], {
    ...server,
    serverCpu: 100,
  });
  const relay300 = summarizeStep("relay", "socket", 300, [load([80])], server);
  const bare300 = summarizeStep("bare", "socket", 300, [load([70])], server);
  const steps = [bare100, relay100, bare300, relay300];
  const table = capacityTable(steps, "socket").split("\n");
  assertEquals(table.length, 4);
  assert(table[2]!.startsWith("| 100 (54) | 2.00 / 2.00 / 2.00 | 0 / 0 | 25 | 80.0 | 250.0 |"));
  assert(table[2]!.includes("| 2.50× |"), table[2]);
  assert(table[3]!.includes("p99 80.0 ms > 50 ms"), table[3]);
  const results = {
    settings: {
      socketSteps: [100, 300],
      postSteps: [],
      vias: ["socket" as const],
      chunksPerSecond: 20,
      seconds: 3,
      multiEvery: 50,
      multiVisitors: 5,
      chatsPerWorker: 50,
      chatsPerProcess: 1000,
    },
    steps,
    capacities: [
      {
        via: "socket" as const,
        kind: "relay" as const,
        holds: 100,
        failsAt: 300,
        generatorBound: false,
      },
    ],
  };
  assertEquals(capacityLines(results), [
    "- worker socket: Relay holds 100 chats; fails at 300, where the floor fails too: the machine or the generator gave out.",
  ]);
  const section = renderCapacity(results, {
    date: "d",
    command: "c",
    machine: "m",
    pinned: "p",
    load: "1.0",
  });
  assert(section.startsWith("<!-- bench:capacity:begin"));
  assert(section.endsWith("<!-- bench:capacity:end -->"));
  assert(!section.includes("Via POST"));
});

Deno.test("perChunkTable: CPU µs per chunk of the one-socket saturation phases and the ratio", () => {
  const phase = (via: "socket" | "http", cpuMsPer1000: number): FanoutResult => ({
    sockets: 1,
    via,
    mode: "saturate",
    offeredChunksPerSecond: null,
    chunksSent: 10_000,
    deliveries: 10_000,
    lost: 0,
    seconds: 1,
    deliveriesPerSecond: 10_000,
    latency: { count: 1, p50: 1, p90: 1, p99: 1, max: 1, mean: 1 },
    serverCpuMs: cpuMsPer1000 * 10,
    cpuMsPer1000,
  });
  const table = perChunkTable(
    [phase("socket", 22), phase("http", 70)],
    [phase("socket", 16), phase("http", 16)],
  ).split("\n");
  assertEquals(table.slice(2), [
    "| worker socket | 22.0 | 16.0 | 1.38× |",
    "| POST agent-chunk | 70.0 | 16.0 | 4.38× |",
  ]);
  // Without the one-socket phases (other --sockets), only the header remains.
  assertEquals(perChunkTable([], []).split("\n").length, 2);
});
