/**
 * The benchmark's report: markdown tables of the relay beside the floor (the bare
 * forwarder), each figure as a ratio to it, printed and written into docs/BENCHMARKS.md
 * between markers, so the notes around them (profiles, before/after) survive a re-run.
 */
import { dirname } from "node:path";
import type { FanoutResult } from "./fanout.ts";
import type { MemoryPoint } from "./load.ts";
import type { PipelineResult } from "./pipeline.ts";
import type { MachineInfo } from "./proc.ts";
import type { LatencySummary } from "./stats.ts";

/** Everything one `deno task bench` measured. */
export interface BenchResults {
  machine: MachineInfo;
  date: string;
  command: string;
  pinned: string;
  settings: Record<string, unknown>;
  relay: { memory: MemoryPoint[]; fanout: FanoutResult[] };
  bare: { memory: MemoryPoint[]; fanout: FanoutResult[] };
  pipeline: PipelineResult | null;
}

export const BEGIN_MARKER = "<!-- bench:begin (written by `deno task bench`; edit around it) -->";
export const END_MARKER = "<!-- bench:end -->";

/** Milliseconds: two decimals under 10, one above; "–" when not a number. */
export const ms = (v: number) => Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) : "–";
export const int = (v: number) => Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "–";
export const ratio = (v: number) => (Number.isFinite(v) && v > 0 ? `${v.toFixed(2)}×` : "–");
/** CPU per 1000 deliveries, or "n/a" when the phase used under 5 clock ticks (50 ms). */
export const cpu = (r: FanoutResult) => (r.serverCpuMs < 50 ? "n/a" : ms(r.cpuMsPer1000));
export const latencies = (l: LatencySummary) =>
  `${ms(l.p50)} / ${ms(l.p90)} / ${ms(l.p99)} / ${ms(l.max)}`;

/** The load of a phase: "20 chunks/s" or "saturation". */
export function loadName(r: FanoutResult): string {
  return r.mode === "rate" ? `${r.offeredChunksPerSecond} chunks/s` : "saturation";
}

function caseName(r: FanoutResult): string {
  const load = loadName(r);
  const via = r.via === "socket" ? "worker socket" : "POST agent-chunk";
  return `${r.sockets} | ${via} | ${load}`;
}

/** The fan-out table: relay, floor and ratios (relay ÷ floor; throughput floor ÷ relay). */
export function fanoutTable(relay: FanoutResult[], bare: FanoutResult[]): string {
  const rows = [
    "| Sockets | In via | Load | Relay p50 / p90 / p99 / max (ms) | Relay deliveries/s | Relay CPU ms per 1000 | Floor p50 / p90 / p99 / max (ms) | Floor deliveries/s | Floor CPU ms per 1000 | p50 ratio | p99 ratio | Throughput ratio | CPU ratio |",
    "| ---: | --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of relay) {
    const f = bare.find((b) => b.sockets === r.sockets && b.via === r.via && b.mode === r.mode);
    const lost = (r.lost ? ` (${int(r.lost)} lost)` : "") +
      (r.misordered ? ` (${int(r.misordered)} out of order or repeated)` : "");
    const cpuRatio = f && cpu(r) !== "n/a" && cpu(f) !== "n/a"
      ? ratio(r.cpuMsPer1000 / f.cpuMsPer1000)
      : "–";
    const cells = [
      caseName(r),
      latencies(r.latency) + lost,
      int(r.deliveriesPerSecond),
      cpu(r),
      f ? latencies(f.latency) : "–",
      f ? int(f.deliveriesPerSecond) : "–",
      f ? cpu(f) : "–",
      f ? ratio(r.latency.p50 / f.latency.p50) : "–",
      f ? ratio(r.latency.p99 / f.latency.p99) : "–",
      f ? ratio(f.deliveriesPerSecond / r.deliveriesPerSecond) : "–",
      cpuRatio,
    ];
    rows.push(`| ${cells.join(" | ")} |`);
  }
  return rows.join("\n");
}

/**
 * Per-chunk cost of the one-socket paths: server CPU per chunk at saturation with one
 * visitor socket (one chunk, one delivery, so CPU ms per 1000 deliveries is µs per chunk).
 */
export function perChunkTable(relay: FanoutResult[], bare: FanoutResult[]): string {
  const rows = [
    "| In via | Relay CPU µs per chunk | Floor CPU µs per chunk | Ratio |",
    "| --- | ---: | ---: | ---: |",
  ];
  for (const via of ["socket", "http"] as const) {
    const pick = (list: FanoutResult[]) =>
      list.find((r) => r.sockets === 1 && r.via === via && r.mode === "saturate");
    const [r, f] = [pick(relay), pick(bare)];
    if (!r && !f) continue;
    const us = (x: FanoutResult | undefined) => (x && cpu(x) !== "n/a" ? x.cpuMsPer1000 : NaN);
    rows.push(
      `| ${via === "socket" ? "worker socket" : "POST agent-chunk"} | ${ms(us(r))} | ${
        ms(us(f))
      } | ${ratio(us(r) / us(f))} |`,
    );
  }
  return rows.join("\n");
}

/** The memory table: RSS growth per idle visitor socket. */
export function memoryTable(relay: MemoryPoint[], bare: MemoryPoint[]): string {
  const rows = [
    "| Idle sockets | Relay RSS delta (MiB) | Relay KiB per socket | Floor RSS delta (MiB) | Floor KiB per socket | Ratio |",
    "| ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of relay) {
    const f = bare.find((b) => b.sockets === r.sockets);
    rows.push(
      `| ${int(r.sockets)} | ${(r.deltaKib / 1024).toFixed(1)} | ${r.kibPerSocket.toFixed(1)} | ${
        f ? (f.deltaKib / 1024).toFixed(1) : "–"
      } | ${f ? f.kibPerSocket.toFixed(1) : "–"} | ${
        f ? ratio(r.kibPerSocket / f.kibPerSocket) : "–"
      } |`,
    );
  }
  // The slope between two counts leaves out what a first burst of sockets costs once
  // (heap growth, pools): the cost of one more socket.
  for (let i = 1; i < relay.length; i++) {
    const [a, b] = [relay[i - 1]!, relay[i]!];
    const fa = bare.find((p) => p.sockets === a.sockets);
    const fb = bare.find((p) => p.sockets === b.sockets);
    const slope = (x: MemoryPoint, y: MemoryPoint) =>
      (y.deltaKib - x.deltaKib) / (y.sockets - x.sockets);
    const r = slope(a, b);
    const f = fa && fb ? slope(fa, fb) : NaN;
    rows.push(
      `| ${int(a.sockets)} → ${int(b.sockets)} (each further socket) | | ${r.toFixed(1)} | | ${
        Number.isFinite(f) ? f.toFixed(1) : "–"
      } | ${ratio(r / f)} |`,
    );
  }
  return rows.join("\n");
}

/** The pipeline table, beside the floor's one hop (one socket at the fixed rate). */
export function pipelineTable(pipeline: PipelineResult, hop: FanoutResult | undefined): string {
  const floor = hop?.latency.p50 ?? NaN;
  const row = (name: string, l: LatencySummary) =>
    `| ${name} | ${l.count} | ${ms(l.p50)} | ${ms(l.p90)} | ${ms(l.p99)} | ${ms(l.max)} | ${
      ms(floor)
    } | ${ratio(l.p50 / floor)} |`;
  return [
    "| Token | Samples | p50 (ms) | p90 | p99 | max | Floor: one bare hop p50 (ms) | p50 ratio |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    row("first token (reasoning)", pipeline.firstToken),
    row("first answer token", pipeline.firstAnswerToken),
    row("each later token", pipeline.laterTokens),
  ].join("\n");
}

/** The generated section: machine, command, tables. */
export function renderReport(results: BenchResults): string {
  const m = results.machine;
  const hop = results.bare.fanout.find((r) =>
    r.sockets === 1 && r.via === "socket" && r.mode === "rate"
  );
  const parts = [
    BEGIN_MARKER,
    "",
    `Measured ${results.date} with \`${results.command}\`.`,
    "",
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.ramGib.toFixed(1)} GiB RAM, Linux ${m.kernel}`,
    `- Deno ${m.deno} (V8 ${m.v8}); ${results.pinned}`,
    `- Settings: \`${JSON.stringify(results.settings)}\``,
    "",
    "### Chunk fan-out to visitor sockets",
    "",
    "All sockets on one chat; latency is visitor receive minus the send time written into the chunk by the same load process. Ratios are relay ÷ floor (throughput: floor ÷ relay), so 1.00× is the floor and higher is worse.",
    "",
    fanoutTable(results.relay.fanout, results.bare.fanout),
    "",
    "### Per-chunk cost of the one-socket paths",
    "",
    "Server CPU per chunk at saturation with one visitor socket, relay beside the floor (issue 18 aims at 1.2× over the worker socket, 2× over POST).",
    "",
    perChunkTable(results.relay.fanout, results.bare.fanout),
    "",
    "### Memory per idle visitor socket",
    "",
    "Server RSS (`VmRSS`) after the sockets opened and settled, minus RSS before; relay visitors each on their own chat, authenticated.",
    "",
    memoryTable(results.relay.memory, results.bare.memory),
    "",
  ];
  if (results.pipeline) {
    const p = results.pipeline;
    parts.push(
      "### Latency the pipeline adds to the model's tokens",
      "",
      `Demo model server (${p.modelDelayMs} ms between deltas, ${p.tokensPerTurn}-word answers, ${p.turns} turns) → worker process → relay → visitor socket; model emit time to visitor receive time, one clock. ${p.unmatched} deltas unmatched.`,
      "",
      pipelineTable(p, hop),
      "",
    );
  }
  parts.push(END_MARKER);
  return parts.join("\n");
}

const DEFAULT_DOC = `# Benchmarks

\`deno task bench\` (or \`deno task bench --quick\`) measures the relay against the floor, a bare
Deno WebSocket forwarder (\`bench/bare_forwarder.ts\`), as SPEC §8 asks. The section between the
markers is rewritten by each run; the notes after it are kept.

`;

/** Markers of the hostile phase's own section (`--only=hostile` rewrites it alone). */
export const HOSTILE_BEGIN_MARKER =
  "<!-- bench:hostile:begin (written by `deno task bench --only=hostile`; edit around it) -->";
export const HOSTILE_END_MARKER = "<!-- bench:hostile:end -->";

/**
 * Writes `section` into `path`, replacing the previous generated section (between `markers`)
 * and keeping the rest.
 */
export async function writeReport(
  path: string,
  section: string,
  markers: { begin: string; end: string } = { begin: BEGIN_MARKER, end: END_MARKER },
): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    text = DEFAULT_DOC + `${markers.begin}\n${markers.end}\n`;
  }
  const begin = text.indexOf(markers.begin);
  const end = text.indexOf(markers.end);
  const next = begin >= 0 && end > begin
    ? text.slice(0, begin) + section + text.slice(end + markers.end.length)
    : `${text.trimEnd()}\n\n${section}\n`;
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, next);
  // Formatted as `deno fmt` would, so a fresh report passes `deno fmt --check` (CI).
  const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path] }).output();
  if (!fmt.success) {
    throw new Error(`Cannot format "${path}": ${new TextDecoder().decode(fmt.stderr)}`);
  }
}
