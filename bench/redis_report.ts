/**
 * The Redis engine's report (issue 14): one relay on Deno KV, one relay on Redis and the
 * cross-relay path (worker on relay B, visitors on relay A, one Redis), each beside the floor
 * as ratios, and what the cross-relay path adds per chunk at p50. Written into
 * docs/BENCHMARKS.md between its own markers, so a Redis-only run leaves the rest alone.
 */
import type { FanoutResult } from "./fanout.ts";
import type { RedisResults, RedisSetup } from "./redis_phase.ts";
import { cpu, int, latencies, loadName, ms, ratio } from "./report.ts";

export const REDIS_BEGIN =
  "<!-- bench:redis:begin (written by `deno task bench --only=redis`; edit around it) -->";
export const REDIS_END = "<!-- bench:redis:end -->";

/** The aim of issue 14: the cross-relay path adds under this much p50 per chunk. */
export const CROSS_AIM_MS = 1;

const SETUP_NAME: Record<RedisSetup, string> = {
  bare: "floor",
  kv: "one relay, Deno KV",
  redis: "one relay, Redis",
  cross: "relay B → A, one Redis",
};

/** Two phases measure the same case: same socket count, way in and load. */
const sameCase = (a: FanoutResult, b: FanoutResult) =>
  a.sockets === b.sockets && a.via === b.via && a.mode === b.mode &&
  a.offeredChunksPerSecond === b.offeredChunksPerSecond;

/** redis-server CPU per 1000 deliveries, "n/a" under 5 clock ticks, "–" without Redis. */
export function besideCpu(r: FanoutResult): string {
  if (r.besideCpuMs === undefined || r.besideCpuMsPer1000 === undefined) return "–";
  return r.besideCpuMs < 50 ? "n/a" : ms(r.besideCpuMsPer1000);
}

/** CPU per 1000 deliveries of `r` ÷ the floor's, or "–" when either is under 5 ticks. */
function cpuRatio(r: FanoutResult, f: FanoutResult | undefined, withBeside: boolean): string {
  if (!f || cpu(r) === "n/a" || cpu(f) === "n/a") return "–";
  if (withBeside && besideCpu(r) !== "n/a" && besideCpu(r) !== "–") {
    return ratio((r.cpuMsPer1000 + r.besideCpuMsPer1000!) / f.cpuMsPer1000);
  }
  return withBeside ? "–" : ratio(r.cpuMsPer1000 / f.cpuMsPer1000);
}

/** Every relay setup's phases beside the floor's same case, as ratios (relay ÷ floor). */
export function redisTable(setups: Record<RedisSetup, FanoutResult[]>): string {
  const rows = [
    "| Setup | Sockets | Load | p50 / p90 / p99 / max (ms) | Lost / out of order or repeated | Deliveries/s | Relay CPU ms per 1000 | redis-server CPU ms per 1000 | Floor p50 / p90 / p99 / max (ms) | Floor CPU ms per 1000 | p50 ratio | p99 ratio | Throughput ratio | CPU ratio | CPU ratio with redis-server |",
    "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const setup of ["kv", "redis", "cross"] as const) {
    for (const r of setups[setup]) {
      const f = setups.bare.find((b) => sameCase(b, r));
      const cells = [
        SETUP_NAME[setup],
        int(r.sockets),
        loadName(r),
        latencies(r.latency),
        `${int(r.lost)} / ${r.misordered === undefined ? "–" : int(r.misordered)}`,
        int(r.deliveriesPerSecond),
        cpu(r),
        besideCpu(r),
        f ? latencies(f.latency) : "–",
        f ? cpu(f) : "–",
        f ? ratio(r.latency.p50 / f.latency.p50) : "–",
        f ? ratio(r.latency.p99 / f.latency.p99) : "–",
        f ? ratio(f.deliveriesPerSecond / r.deliveriesPerSecond) : "–",
        cpuRatio(r, f, false),
        cpuRatio(r, f, true),
      ];
      rows.push(`| ${cells.join(" | ")} |`);
    }
  }
  return rows.join("\n");
}

/** What Redis adds at p50 per chunk, for one case: each setup's p50 and the differences. */
export interface CrossAdds {
  sockets: number;
  mode: FanoutResult["mode"];
  load: string;
  kv: number;
  redis: number;
  cross: number;
  /** One relay on Redis minus one relay on KV (ms). */
  redisAdds: number;
  /** Relay B → A minus one relay on KV (ms): what the cross-relay path adds per chunk. */
  crossAdds: number;
  /** Deliveries the cross-relay phase lost. */
  crossLost: number;
}

/** p50 differences against one relay on KV, for every case the KV relay ran. */
export function crossAdds(setups: Record<RedisSetup, FanoutResult[]>): CrossAdds[] {
  return setups.kv.map((k) => {
    const redis = setups.redis.find((r) => sameCase(r, k));
    const cross = setups.cross.find((r) => sameCase(r, k));
    // A phase that delivered nothing has no latency: its difference is not a number.
    const p50 = (r: FanoutResult | undefined) => (r && r.deliveries ? r.latency.p50 : NaN);
    return {
      sockets: k.sockets,
      mode: k.mode,
      load: loadName(k),
      kv: k.latency.p50,
      redis: p50(redis),
      cross: p50(cross),
      redisAdds: p50(redis) - k.latency.p50,
      crossAdds: p50(cross) - k.latency.p50,
      crossLost: cross ? cross.lost : NaN,
    };
  });
}

/** Signed milliseconds: "+0.42", "−0.10", "–". */
export function signedMs(v: number): string {
  if (!Number.isFinite(v)) return "–";
  return v < 0 ? `−${ms(-v)}` : `+${ms(v)}`;
}

/**
 * The aim's verdict for one case: fixed-rate rows only (at saturation p50 is mostly the queue
 * the window builds), and never "met" when deliveries were lost.
 */
export function aimVerdict(row: CrossAdds): string {
  if (row.mode !== "rate") return "(queue; no aim)";
  if (!Number.isFinite(row.crossAdds)) return "not measured";
  if (row.crossLost > 0) return `not met: ${int(row.crossLost)} deliveries lost`;
  return row.crossAdds < CROSS_AIM_MS ? "met ✓" : "not met ✗";
}

/** The table of what one relay on Redis and the cross-relay path add over one relay on KV. */
export function crossAddsTable(rows: CrossAdds[]): string {
  const lines = [
    `| Sockets | Load | KV p50 (ms) | Redis p50 | B → A p50 | Redis adds | B → A adds | Aim (B → A adds < ${CROSS_AIM_MS} ms) |`,
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const r of rows) {
    lines.push(
      `| ${int(r.sockets)} | ${r.load} | ${ms(r.kv)} | ${ms(r.redis)} | ${ms(r.cross)} | ${
        signedMs(r.redisAdds)
      } | ${signedMs(r.crossAdds)} | ${aimVerdict(r)} |`,
    );
  }
  return lines.join("\n");
}

/** One sentence: the headline case (1 socket at the fixed rate, else the first rate row). */
export function aimLine(rows: CrossAdds[]): string {
  const rate = rows.filter((r) => r.mode === "rate");
  const head = rate.find((r) => r.sockets === 1) ?? rate[0];
  if (!head) return "The cross-relay path was not measured at a fixed rate.";
  const verdict = aimVerdict(head);
  if (!Number.isFinite(head.crossAdds)) {
    return `What the cross-relay path adds per chunk at p50 (relay B → Redis → relay A, minus one relay on Deno KV): not measured, relay A delivered none of the ${
      int(head.crossLost)
    } chunks sent through relay B (${int(head.sockets)} visitor socket${
      head.sockets === 1 ? "" : "s"
    } at ${head.load}).`;
  }
  return `What the cross-relay path adds per chunk at p50 (relay B → Redis → relay A, minus one relay on Deno KV), ${
    int(head.sockets)
  } visitor socket${head.sockets === 1 ? "" : "s"} at ${head.load}: **${
    signedMs(head.crossAdds)
  } ms** against the aim of under ${CROSS_AIM_MS} ms: ${verdict}.`;
}

/** The generated Redis section. */
export function renderRedis(
  results: RedisResults,
  meta: { date: string; command: string; machine: string; pinned: string; load: string },
): string {
  const s = results.settings;
  const rows = crossAdds(results.setups);
  const parts = [
    REDIS_BEGIN,
    "",
    `Measured ${meta.date} with \`${meta.command}\`; ${meta.machine}; ${meta.pinned}; load average ${meta.load}.`,
    "",
    `- redis-server: ${results.redis || "not started"}; pinned to the server core with the relays.`,
    `- Chunks over the worker socket to ${
      s.socketCounts.join(" and ")
    } visitor sockets on one chat: ${s.chunksPerSecond} chunks/s, then saturation (a window of chunks in flight), ${s.phaseSeconds} s each; ${s.rounds} round(s) alternating the setups, each phase keeping its better round.`,
    "- Relay B → A: the worker socket on relay B, every visitor socket on relay A, both relays on one Redis; relay CPU is both relays' summed, redis-server's beside it. Ratios are ÷ the floor (throughput: floor ÷ relay); 1.00× is the floor.",
    "",
    aimLine(rows),
    "",
    crossAddsTable(rows),
    "",
    redisTable(results.setups),
    "",
  ];
  const problems = Object.entries(results.problems);
  if (problems.length) {
    parts.push("Problems seen in this run:", "");
    for (const [setup, list] of problems) {
      for (const text of list ?? []) {
        parts.push(`- ${SETUP_NAME[setup as RedisSetup]}: \`${text.replaceAll("`", "'")}\``);
      }
    }
    parts.push("");
  }
  parts.push(REDIS_END);
  return parts.join("\n");
}
