/**
 * The capacity phase's report: per way in, one row per chat count with the relay beside
 * the floor, and the capacity read off the steps. Written into docs/BENCHMARKS.md between
 * its own markers, so a capacity-only run leaves the other tables alone.
 */
import type { CapacityResults, CapacityStep } from "./capacity.ts";

export const CAPACITY_BEGIN =
  "<!-- bench:capacity:begin (written by `deno task bench --only=capacity`; edit around it) -->";
export const CAPACITY_END = "<!-- bench:capacity:end -->";

const num = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : "–");
const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "–");
const ratio = (v: number) => (Number.isFinite(v) && v > 0 ? `${v.toFixed(2)}×` : "–");
const ms = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) : "–");

const VIA_NAME = { socket: "worker socket", http: "POST /agent-chunk" } as const;

function latency(s: CapacityStep | undefined): string {
  return s ? `${ms(s.latency.p50)} / ${ms(s.latency.p99)} / ${ms(s.latency.max)}` : "–";
}
function lossCell(s: CapacityStep | undefined): string {
  return s ? `${int(s.lost)} / ${int(s.late)}` : "–";
}
function verdictCell(s: CapacityStep | undefined): string {
  if (!s) return "–";
  const text = s.verdict.holds ? "holds" : s.verdict.reasons.join("; ");
  return s.verdict.generatorSaturated ? `${text} (generator saturated)` : text;
}

/** The table of one way in: relay beside floor at each chat count. */
export function capacityTable(steps: CapacityStep[], via: "socket" | "http"): string {
  const rows = [
    "| Chats (visitors) | Relay p50 / p99 / max (ms) | Relay lost / late | Relay CPU % | Relay RSS (MiB) | Relay CPU µs per chunk | Floor p50 / p99 / max (ms) | Floor lost / late | Floor CPU % | Floor RSS (MiB) | Floor CPU µs per chunk | CPU ratio | Generator CPU % (relay run / floor run) | Relay verdict |",
    "| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
  ];
  const counts = [...new Set(steps.filter((s) => s.via === via).map((s) => s.chats))];
  for (const chats of counts.sort((a, b) => a - b)) {
    const find = (kind: string) =>
      steps.find((s) => s.via === via && s.kind === kind && s.chats === chats);
    const [r, f] = [find("relay"), find("bare")];
    const gen = (s: CapacityStep | undefined) =>
      s ? `${num(s.generatorCpuPercent, 0)} (busiest ${num(s.busiestGeneratorPercent, 0)})` : "–";
    const cells = [
      `${int(chats)} (${int((r ?? f)!.visitors)})`,
      latency(r),
      lossCell(r),
      r ? num(r.serverCpuPercent, 0) : "–",
      r ? num(r.rssMib) : "–",
      r ? num(r.serverCpuUsPerChunk) : "–",
      latency(f),
      lossCell(f),
      f ? num(f.serverCpuPercent, 0) : "–",
      f ? num(f.rssMib) : "–",
      f ? num(f.serverCpuUsPerChunk) : "–",
      r && f ? ratio(r.serverCpuUsPerChunk / f.serverCpuUsPerChunk) : "–",
      `${gen(r)} / ${gen(f)}`,
      verdictCell(r),
    ];
    rows.push(`| ${cells.join(" | ")} |`);
  }
  return rows.join("\n");
}

/**
 * One sentence per server and way in: the largest count that held, and what stopped it
 * (the generator, or the machine when the floor failed at the same count).
 */
export function capacityLines(results: CapacityResults): string[] {
  return results.capacities.map((c) => {
    const floor = results.steps.find((s) =>
      s.kind === "bare" && s.via === c.via && s.chats === c.failsAt
    );
    const floorFailed = c.kind === "relay" && floor !== undefined && !floor.verdict.holds;
    const who = c.kind === "relay" ? "Relay" : "Floor";
    const held = c.holds === null ? "holds no step" : `holds ${int(c.holds)} chats`;
    const stop = c.failsAt === null
      ? "every step run held (the limit is higher)"
      : `fails at ${int(c.failsAt)}${
        c.generatorBound
          ? ", with the load generator saturated: that limit may be the generator's"
          : ""
      }${floorFailed ? ", where the floor fails too: the machine or the generator gave out" : ""}`;
    return `- ${VIA_NAME[c.via]}: ${who} ${held}; ${stop}.`;
  });
}

/** The generated capacity section. */
export function renderCapacity(
  results: CapacityResults,
  meta: { date: string; command: string; machine: string; pinned: string; load: string },
): string {
  const s = results.settings;
  const parts = [
    CAPACITY_BEGIN,
    "",
    `Measured ${meta.date} with \`${meta.command}\`; ${meta.machine}; ${meta.pinned}; load average ${meta.load}.`,
    "",
    `Each chat streams ${s.chunksPerSecond} tokens/s for ${s.seconds} s from simulated workers (${s.chatsPerWorker} chats per worker socket; claim, chunks at growing offsets with turnId and leaseId, reply, as lib/worker does); every ${s.multiEvery}th chat has ${s.multiVisitors} visitors, the rest one. A step holds when p99 delivery latency is at most 50 ms, nothing is lost, nothing errs and at most 1 % of tokens go out over one token interval late. The floor is bench/bare_forwarder.ts routing each frame to its chat's sockets. Server CPU % and RSS are read from \`/proc\` over the window; CPU µs per chunk is server CPU ÷ chunks sent (a chunk goes to one visitor on most chats). Generator CPU is every load process's CPU as % of one core (they share the load core).`,
    "",
    ...capacityLines(results),
    "",
  ];
  for (const via of s.vias) {
    parts.push(`#### Via ${VIA_NAME[via]}`, "", capacityTable(results.steps, via), "");
  }
  parts.push(CAPACITY_END);
  return parts.join("\n");
}
