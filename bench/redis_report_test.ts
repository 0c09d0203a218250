import { assert, assertEquals } from "../tests/_assert.ts";
import type { FanoutResult } from "./fanout.ts";
import type { RedisResults } from "./redis_phase.ts";
import {
  aimLine,
  aimVerdict,
  besideCpu,
  crossAdds,
  crossAddsTable,
  REDIS_BEGIN,
  REDIS_END,
  redisTable,
  renderRedis,
  signedMs,
} from "./redis_report.ts";

function phase(
  sockets: number,
  mode: "rate" | "saturate",
  p50: number,
  extra: Partial<FanoutResult> = {},
): FanoutResult {
  const deliveries = extra.deliveries ?? 1000;
  return {
    sockets,
    via: "socket",
    mode,
    offeredChunksPerSecond: mode === "rate" ? 20 : null,
    chunksSent: deliveries / sockets,
    deliveries,
    lost: 0,
    seconds: 1,
    deliveriesPerSecond: deliveries,
    latency: { count: deliveries, p50, p90: p50 * 2, p99: p50 * 4, max: p50 * 5, mean: p50 },
    serverCpuMs: 100,
    cpuMsPer1000: 100,
    ...extra,
  };
}

const setups = (): RedisResults["setups"] => ({
  bare: [phase(1, "rate", 0.4), phase(1, "saturate", 0.3, { cpuMsPer1000: 10 })],
  kv: [phase(1, "rate", 0.6), phase(1, "saturate", 0.5, { cpuMsPer1000: 20 })],
  redis: [
    phase(1, "rate", 1.2, { besideCpuMs: 20, besideCpuMsPer1000: 5 }),
    phase(1, "saturate", 4, { cpuMsPer1000: 30, besideCpuMs: 200, besideCpuMsPer1000: 10 }),
  ],
  cross: [
    phase(1, "rate", 1.4, { besideCpuMs: 60, besideCpuMsPer1000: 6 }),
    phase(1, "saturate", 5, { cpuMsPer1000: 40, besideCpuMs: 300, besideCpuMsPer1000: 20 }),
  ],
});

Deno.test("crossAdds: each setup's p50 minus one relay on KV, case by case", () => {
  const rows = crossAdds(setups());
  assertEquals(rows.length, 2);
  const [rate, saturate] = rows;
  assertEquals(rate!.load, "20 chunks/s");
  assert(Math.abs(rate!.redisAdds - 0.6) < 1e-9);
  assert(Math.abs(rate!.crossAdds - 0.8) < 1e-9);
  assertEquals(rate!.crossLost, 0);
  assertEquals(saturate!.mode, "saturate");
  assert(Math.abs(saturate!.crossAdds - 4.5) < 1e-9);
});

Deno.test("crossAdds: a cross-relay phase that delivered nothing has no difference, only losses", () => {
  const s = setups();
  s.cross = [phase(1, "rate", NaN, { deliveries: 0, lost: 30 })];
  const [rate, saturate] = crossAdds(s);
  assert(Number.isNaN(rate!.crossAdds));
  assertEquals(rate!.crossLost, 30);
  assertEquals(aimVerdict(rate!), "not measured");
  // The case the cross-relay run lacks altogether.
  assert(Number.isNaN(saturate!.cross));
  assert(aimLine([rate!]).includes("delivered none of the 30 chunks"), aimLine([rate!]));
});

Deno.test("aimVerdict: under 1 ms at a fixed rate meets the aim; losses or saturation never do", () => {
  const [rate, saturate] = crossAdds(setups());
  assertEquals(aimVerdict(rate!), "met ✓");
  assertEquals(aimVerdict(saturate!), "(queue; no aim)");
  assertEquals(aimVerdict({ ...rate!, crossAdds: 1.2 }), "not met ✗");
  assertEquals(aimVerdict({ ...rate!, crossLost: 3 }), "not met: 3 deliveries lost");
  const line = aimLine([saturate!, rate!]);
  assert(line.includes("**+0.80 ms**") && line.includes("met ✓"), line);
  assertEquals(aimLine([saturate!]), "The cross-relay path was not measured at a fixed rate.");
});

Deno.test("signedMs and besideCpu format differences and redis-server CPU", () => {
  assertEquals(signedMs(0.4567), "+0.46");
  assertEquals(signedMs(-0.1), "−0.10");
  assertEquals(signedMs(12.34), "+12.3");
  assertEquals(signedMs(NaN), "–");
  assertEquals(besideCpu(phase(1, "rate", 1)), "–");
  assertEquals(besideCpu(phase(1, "rate", 1, { besideCpuMs: 40, besideCpuMsPer1000: 9 })), "n/a");
  assertEquals(
    besideCpu(phase(1, "rate", 1, { besideCpuMs: 400, besideCpuMsPer1000: 9.5 })),
    "9.50",
  );
});

Deno.test("redisTable: every relay setup beside the floor's same case, as ratios", () => {
  const table = redisTable(setups()).split("\n");
  assertEquals(table.length, 2 + 6);
  const cross = table.find((l) => l.startsWith("| relay B → A, one Redis | 1 | saturation"))!;
  const cells = cross.split("|").map((c) => c.trim());
  // p50 ratio 5 ÷ 0.3, CPU ratio 40 ÷ 10, with redis-server (40 + 20) ÷ 10.
  assertEquals(cells[11], "16.67×");
  assertEquals(cells[14], "4.00×");
  assertEquals(cells[15], "6.00×");
  assertEquals(cells[8], "20.0");
  // A fixed-rate row whose redis-server CPU is under 5 ticks gets no ratio with it.
  const rate = table.find((l) => l.startsWith("| one relay, Redis | 1 | 20 chunks/s"))!;
  assertEquals(rate.split("|").map((c) => c.trim())[15], "–");
  // Lost, then out of order or repeated ("–" where the sockets were not numbered).
  assertEquals(cells[5], "0 / –");
  const s = setups();
  s.cross[1] = { ...s.cross[1]!, lost: 3, misordered: 2 };
  assert(redisTable(s).includes("| 3 / 2 |"));
  // KV has no redis-server.
  assert(
    table.find((l) => l.startsWith("| one relay, Deno KV | 1 | saturation"))!.includes("| – |"),
  );
});

Deno.test("renderRedis: a section between its markers, with the aim, tables and problems", () => {
  const results: RedisResults = {
    settings: {
      socketCounts: [1],
      chunksPerSecond: 20,
      window: 32,
      phaseSeconds: 1,
      maxChunks: 100,
      rounds: 1,
      fsync: "always",
    },
    redis: "Redis 7.0.15, systemd/redis-terrarium.conf with appendfsync always",
    setups: setups(),
    problems: { cross: ["relay A: `oops`"] },
  };
  const text = renderRedis(results, {
    date: "2026-12-06T00:00:00Z",
    command: "deno task bench --only=redis",
    machine: "test machine",
    pinned: "not pinned",
    load: "0 before, 0 after",
  });
  assert(text.startsWith(REDIS_BEGIN) && text.endsWith(REDIS_END));
  assert(text.includes("appendfsync always"));
  assert(text.includes(crossAddsTable(crossAdds(results.setups))));
  assert(text.includes("- relay B → A, one Redis: `relay A: 'oops'`"), text);
});
