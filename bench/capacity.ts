/**
 * The capacity phase (issue 18): how many chats, each streamed at a fixed token rate, one
 * server carries. For each way in (worker socket, `POST /agent-chunk`) the chat count is
 * stepped up until p99 delivery latency passes the limit, a delivery is lost or chunks
 * cannot go out on time; at each step the floor (bench/bare_forwarder.ts, routed by chat)
 * carries the same traffic first. The server's CPU and RSS are read from `/proc` over the
 * streaming window; the load processes report their own CPU, so a saturated generator is
 * named rather than blamed on the server.
 */
import { fileURLToPath } from "node:url";
import type { ChildProcess } from "../tests/_process.ts";
import type { CapacityJob, CapacityLoadResult } from "./capacity_load.ts";
import {
  type Capacity,
  capacity,
  chatPlan,
  judge,
  type JudgedStep,
  loadProcesses,
  split,
  stepUp,
  type Verdict,
} from "./capacity_plan.ts";
import { cpuMs, rssKib } from "./proc.ts";
import { spawnPinned } from "./process.ts";
import type { Server } from "./servers.ts";
import { LatencyHistogram, type LatencySummary } from "./stats.ts";

const LOAD_SCRIPT = fileURLToPath(new URL("./capacity_load.ts", import.meta.url));

/** What the phase runs; `--quick` shortens it (see bench/main.ts). */
export interface CapacitySettings {
  /** Chat counts stepped through over the worker socket. */
  socketSteps: number[];
  /** Chat counts stepped through over `POST /agent-chunk` (one request per token). */
  postSteps: number[];
  vias: ("socket" | "http")[];
  chunksPerSecond: number;
  /** Length of the measured streaming window of each step. */
  seconds: number;
  /** Every `multiEvery`-th chat has `multiVisitors` visitors; the rest have one. */
  multiEvery: number;
  multiVisitors: number;
  chatsPerWorker: number;
  /** One load process per this many chats, unless `processes` forces a count. */
  chatsPerProcess: number;
  processes?: number;
}

/** One server at one step. */
export interface CapacityStep {
  via: "socket" | "http";
  kind: "relay" | "bare";
  chats: number;
  visitors: number;
  processes: number;
  latency: LatencySummary;
  sent: number;
  scheduled: number;
  late: number;
  maxLagMs: number;
  lost: number;
  errors: number;
  firstError: string | null;
  deliveriesPerSecond: number;
  serverCpuPercent: number;
  serverCpuUsPerChunk: number;
  rssMib: number;
  generatorCpuPercent: number;
  busiestGeneratorPercent: number;
  verdict: Verdict;
}

/** Everything the phase measured, and the capacity read off it per server and way in. */
export interface CapacityResults {
  settings: CapacitySettings;
  steps: CapacityStep[];
  capacities: (Capacity & { via: "socket" | "http"; kind: "relay" | "bare" })[];
}

/** What the phase needs from bench/main.ts. */
export interface CapacityEnv {
  loadCore: number | null;
  targets: Set<string>;
  withServer<T>(kind: "relay" | "bare", fn: (server: Server) => Promise<T>): Promise<T>;
  log(text: string): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits for `promise`, or throws after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs one step against one running server. */
async function runStep(
  server: Server,
  via: "socket" | "http",
  chats: number,
  settings: CapacitySettings,
  env: CapacityEnv,
): Promise<CapacityStep> {
  const plan = chatPlan(chats, settings);
  const processes = loadProcesses(chats, settings.chatsPerProcess, settings.processes);
  const children: ChildProcess[] = [];
  try {
    for (const [index, part] of split(plan, processes).entries()) {
      const job: CapacityJob = {
        target: { kind: server.kind, url: server.url, pid: server.pid },
        via,
        chats: part,
        chatsPerWorker: settings.chatsPerWorker,
        chunksPerSecond: settings.chunksPerSecond,
        seconds: settings.seconds,
        index,
      };
      children.push(
        spawnPinned(["run", "--allow-all", "--unstable-kv", LOAD_SCRIPT, JSON.stringify(job)], {
          core: env.loadCore,
          inheritStderr: true,
        }),
      );
    }
    const visitors = plan.reduce((n, c) => n + c.visitors, 0);
    const setupMs = 60_000 + visitors * 30;
    await Promise.all(children.map((c) => c.waitForLine(/^READY /, setupMs)));
    // Settle the handshakes' garbage before the window, so it does not land in it.
    await sleep(500);
    const cpuBefore = cpuMs(server.pid);
    const startedAt = performance.now();
    for (const child of children) Deno.kill(child.pid, "SIGUSR2");
    await sleep(settings.seconds * 1000);
    const serverCpu = cpuMs(server.pid) - cpuBefore;
    const windowMs = performance.now() - startedAt;
    const rssMib = rssKib(server.pid) / 1024;
    const statuses = await within(
      Promise.all(children.map((c) => c.status)),
      settings.seconds * 1000 + 90_000,
      "capacity load processes",
    );
    const results = children.map((child, i) => {
      const line = child.lines.findLast((l) => l.startsWith("RESULT "));
      if (!statuses[i]!.success || !line) {
        throw new Error(`Capacity load ${i} failed:\n${child.lines.join("\n")}`);
      }
      return JSON.parse(line.slice("RESULT ".length)) as CapacityLoadResult;
    });
    return summarizeStep(server.kind, via, chats, results, { serverCpu, windowMs, rssMib });
  } finally {
    await Promise.all(children.map((c) => c.stop(1000)));
  }
}

/** Combines the load processes' reports of one step with the server's readings. */
export function summarizeStep(
  kind: "relay" | "bare",
  via: "socket" | "http",
  chats: number,
  results: CapacityLoadResult[],
  server: { serverCpu: number; windowMs: number; rssMib: number },
): CapacityStep {
  const histogram = new LatencyHistogram();
  for (const r of results) histogram.add(r.histogram);
  const sum = (f: (r: CapacityLoadResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const percent = (cpu: number, wall: number) => (wall > 0 ? (cpu / wall) * 100 : NaN);
  const sent = sum((r) => r.sent);
  const step = {
    via,
    kind,
    chats,
    visitors: sum((r) => r.visitors),
    processes: results.length,
    latency: histogram.summary(),
    sent,
    scheduled: sum((r) => r.scheduled),
    late: sum((r) => r.late),
    maxLagMs: Math.max(0, ...results.map((r) => r.maxLagMs)),
    lost: Math.max(0, sum((r) => r.expected) - sum((r) => r.received)),
    errors: sum((r) => r.errors),
    firstError: results.find((r) => r.firstError)?.firstError ?? null,
    deliveriesPerSecond: sum((r) => r.received) / (server.windowMs / 1000),
    serverCpuPercent: percent(server.serverCpu, server.windowMs),
    serverCpuUsPerChunk: sent ? (server.serverCpu * 1000) / sent : NaN,
    rssMib: server.rssMib,
    generatorCpuPercent: percent(sum((r) => r.cpuMs), Math.max(...results.map((r) => r.wallMs))),
    busiestGeneratorPercent: Math.max(...results.map((r) => percent(r.cpuMs, r.wallMs))),
  };
  const verdict = judge({
    p99Ms: step.latency.p99,
    lost: step.lost,
    errors: step.errors,
    late: step.late,
    sent: step.sent,
    scheduled: step.scheduled,
    generatorCpuPercent: step.generatorCpuPercent,
    busiestGeneratorPercent: step.busiestGeneratorPercent,
  });
  return { ...step, verdict };
}

/** The 1-minute load average of the machine (other tenants' load shows here), or "?". */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0] ?? "?";
  } catch {
    return "?";
  }
}

/** Runs the phase: for each way in, floor then relay at each count, until the relay fails. */
export async function runCapacity(
  settings: CapacitySettings,
  env: CapacityEnv,
): Promise<CapacityResults> {
  const steps: CapacityStep[] = [];
  const capacities: CapacityResults["capacities"] = [];
  const kinds = (["bare", "relay"] as const).filter((k) => env.targets.has(k));
  for (const via of settings.vias) {
    const counts = via === "socket" ? settings.socketSteps : settings.postSteps;
    const byKind = new Map<string, CapacityStep[]>(kinds.map((k) => [k, []]));
    await stepUp(counts, async (chats): Promise<JudgedStep> => {
      let last: CapacityStep | null = null;
      for (const kind of kinds) {
        env.log(`${kind}: capacity, ${chats} chats via ${via}`);
        const step = await env.withServer(kind, (s) => runStep(s, via, chats, settings, env));
        env.log(
          `  ${kind} ${chats} chats ${via}: p99 ${step.latency.p99.toFixed(1)} ms, ` +
            `server CPU ${step.serverCpuPercent.toFixed(0)} %, generator ` +
            `${step.generatorCpuPercent.toFixed(0)} %, ` +
            (step.verdict.holds ? "holds" : step.verdict.reasons.join("; ")),
        );
        steps.push(step);
        byKind.get(kind)!.push(step);
        last = step;
      }
      // The relay's verdict decides the stepping; without a relay, the floor's.
      return { chats, verdict: last!.verdict };
    });
    for (const kind of kinds) capacities.push({ via, kind, ...capacity(byKind.get(kind)!) });
  }
  return { settings, steps, capacities };
}
