/**
 * `deno task bench [--quick] [--out=PATH]
 * [--only=memory,fanout,pipeline,capacity,hostile,redis] [--target=relay,bare] [--sockets=1,100]
 * [--via=socket,http] [--phase-seconds=N] [--rounds=N]
 * [--redis-sockets=1,100] [--redis-fsync=always|everysec]
 * [--capacity-steps=100,300] [--capacity-post-steps=50,100] [--capacity-via=socket,http]
 * [--capacity-seconds=N] [--capacity-procs=N] [--capacity-rate=N]
 * [--capacity-every=N --capacity-visitors=N]
 * [--relay-flags=--cpu-prof,--cpu-prof-dir=DIR]`: measures the relay against a bare Deno
 * WebSocket forwarder (SPEC §8, issue 7), prints a table and writes it into
 * docs/BENCHMARKS.md. Every server under test and every load generator is its own process,
 * pinned to its own core when `taskset` is there; everything runs on 127.0.0.1.
 */
import { fileURLToPath } from "node:url";
import { type CapacitySettings, loadAverage, runCapacity } from "./capacity.ts";
import { CAPACITY_BEGIN, CAPACITY_END, renderCapacity } from "./capacity_report.ts";
import { better, type FanoutResult } from "./fanout.ts";
import { type HostileJob, type HostileResult, hostileTable } from "./hostile.ts";
import type { LoadJob, MemoryPoint } from "./load.ts";
import type { PipelineResult } from "./pipeline.ts";
import { cores, spawnPinned, taskset } from "./process.ts";
import { machineInfo } from "./proc.ts";
import { runRedisPhase } from "./redis_phase.ts";
import { REDIS_BEGIN, REDIS_END, renderRedis } from "./redis_report.ts";
import {
  type BenchResults,
  HOSTILE_BEGIN_MARKER,
  HOSTILE_END_MARKER,
  renderReport,
  writeReport,
} from "./report.ts";
import { type RedisFsync, type Server, startBareForwarder, startRelayServer } from "./servers.ts";

const LOAD_SCRIPT = fileURLToPath(new URL("./load.ts", import.meta.url));
const HOSTILE_SCRIPT = fileURLToPath(new URL("./hostile.ts", import.meta.url));
/** No load job may run longer than this; the whole run stays bounded. */
const LOAD_TIMEOUT_MS = 180_000;

/** Figures a run uses; `--quick` shortens every phase. */
const FULL = {
  socketCounts: [1, 100, 1000],
  rateOnlyCounts: [] as number[],
  chunksPerSecond: 20,
  window: 32,
  phaseSeconds: 3,
  maxChunks: 50_000,
  /** Fan-out runs alternate floor and relay this many times; each phase keeps its best round. */
  rounds: 2,
  memoryCounts: [1000, 5000],
  settleMs: 1500,
  turns: 5,
  words: 100,
  modelDelayMs: 20,
  capacity: {
    socketSteps: [100, 300, 1000, 2000],
    postSteps: [50, 100, 300],
    vias: ["socket", "http"],
    chunksPerSecond: 20,
    seconds: 10,
    multiEvery: 50,
    multiVisitors: 5,
    chatsPerWorker: 50,
    chatsPerProcess: 1000,
  } as CapacitySettings,
  /** Seconds each hostile attack lasts. */
  hostileSeconds: 4,
  /**
   * The Redis engine's phase: visitor sockets per chat, and the `appendfsync` given to the
   * shipped redis-server configuration (its own is `always`).
   */
  redis: { socketCounts: [1, 100], fsync: "always" as RedisFsync },
};
const QUICK: typeof FULL = {
  ...FULL,
  phaseSeconds: 1.5,
  maxChunks: 20_000,
  rounds: 1,
  memoryCounts: [1000],
  settleMs: 800,
  turns: 2,
  words: 40,
  capacity: { ...FULL.capacity, socketSteps: [100, 300], postSteps: [50, 100], seconds: 3 },
  hostileSeconds: 2,
};

function flag(name: string): string | undefined {
  return Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

const quick = Deno.args.includes("--quick");
const settings = { ...(quick ? QUICK : FULL) };
if (flag("sockets")) settings.socketCounts = flag("sockets")!.split(",").map(Number);
if (flag("phase-seconds")) settings.phaseSeconds = Number(flag("phase-seconds"));
if (flag("rounds")) settings.rounds = Number(flag("rounds"));
const numbers = (name: string) => flag(name)?.split(",").map(Number);
settings.capacity = {
  ...settings.capacity,
  socketSteps: numbers("capacity-steps") ?? settings.capacity.socketSteps,
  postSteps: numbers("capacity-post-steps") ?? settings.capacity.postSteps,
  vias: (flag("capacity-via")?.split(",") as CapacitySettings["vias"]) ?? settings.capacity.vias,
  seconds: Number(flag("capacity-seconds") ?? settings.capacity.seconds),
  // Another shape of traffic (every chat with 10 visitors: --capacity-every=1
  // --capacity-visitors=10) and rate (tokens/s per chat), beside the default one.
  chunksPerSecond: Number(flag("capacity-rate") ?? settings.capacity.chunksPerSecond),
  multiEvery: Number(flag("capacity-every") ?? settings.capacity.multiEvery),
  multiVisitors: Number(flag("capacity-visitors") ?? settings.capacity.multiVisitors),
  processes: flag("capacity-procs") ? Number(flag("capacity-procs")) : undefined,
};
settings.redis = {
  socketCounts: numbers("redis-sockets") ?? settings.redis.socketCounts,
  fsync: (flag("redis-fsync") as RedisFsync | undefined) ?? settings.redis.fsync,
};
if (!["always", "everysec"].includes(settings.redis.fsync)) {
  throw new TypeError(`--redis-fsync is always or everysec, not "${settings.redis.fsync}"`);
}
const out = flag("out") ?? "docs/BENCHMARKS.md";
const only = new Set(
  (flag("only") ?? "memory,fanout,pipeline,capacity,hostile,redis").split(","),
);
const targets = new Set((flag("target") ?? "bare,relay").split(","));
const relayFlags = flag("relay-flags")?.split(",") ?? [];
/** The fan-out phase's ways in (`--via=socket` profiles one path alone). */
const fanoutVias = (flag("via")?.split(",") ?? ["socket", "http"]) as ("socket" | "http")[];
const { server: serverCore, load: loadCore } = cores();

const log = (text: string) => Deno.stderr.writeSync(new TextEncoder().encode(`${text}\n`));

/** Runs one load job in its own pinned process and returns what it printed as RESULT. */
async function runLoad<T>(job: LoadJob | HostileJob, script = LOAD_SCRIPT): Promise<T> {
  const child = spawnPinned(
    ["run", "--allow-all", "--unstable-kv", script, JSON.stringify(job)],
    { core: loadCore, inheritStderr: true },
  );
  const timer = setTimeout(() => {
    log(`load job "${job.type}" ran past ${LOAD_TIMEOUT_MS} ms; stopping it`);
    void child.stop(1000);
  }, LOAD_TIMEOUT_MS);
  const status = await child.status;
  clearTimeout(timer);
  const line = child.lines.findLast((l) => l.startsWith("RESULT "));
  if (!status.success || !line) {
    throw new Error(
      `Load job "${job.type}" failed (exit ${status.code}):\n${child.lines.join("\n")}`,
    );
  }
  return JSON.parse(line.slice("RESULT ".length)) as T;
}

/** Starts a fresh server of `kind`, runs `fn` and always stops it. */
async function withServer<T>(
  kind: "relay" | "bare",
  fn: (server: Server) => Promise<T>,
  relayEnv?: Record<string, string>,
) {
  const server = kind === "relay"
    ? await startRelayServer(serverCore, relayFlags, relayEnv)
    : await startBareForwarder(serverCore);
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}

const target = (s: Server) => ({ kind: s.kind, url: s.url, pid: s.pid });
const results: BenchResults = {
  machine: machineInfo(),
  date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  command: `deno task bench${Deno.args.length ? " " + Deno.args.join(" ") : ""}`,
  pinned: serverCore === null
    ? "not pinned (no taskset or one core)"
    : `server pinned to core ${serverCore}, load generator (and worker, model) to core ${loadCore} with ${taskset()}`,
  settings,
  relay: { memory: [], fanout: [] },
  bare: { memory: [], fanout: [] },
  pipeline: null,
};

const started = performance.now();
for (const kind of ["bare", "relay"] as const) {
  if (!targets.has(kind) || !only.has("memory")) continue;
  log(`${kind}: memory per idle socket`);
  const memory = await withServer(kind, (s) =>
    runLoad<{ points: MemoryPoint[] }>({
      type: "memory",
      target: target(s),
      counts: settings.memoryCounts,
      settleMs: settings.settleMs,
    }));
  results[kind].memory = memory.points;
}
// Alternating floor and relay spreads the machine's slow moments (other tenants) over both.
for (let round = 1; round <= settings.rounds && only.has("fanout"); round++) {
  for (const kind of ["bare", "relay"] as const) {
    if (!targets.has(kind)) continue;
    log(`${kind}: chunk fan-out, round ${round} of ${settings.rounds}`);
    const phases = await withServer(kind, (s) =>
      runLoad<FanoutResult[]>({
        type: "fanout",
        target: target(s),
        socketCounts: settings.socketCounts,
        rateOnlyCounts: settings.rateOnlyCounts,
        vias: fanoutVias,
        chunksPerSecond: settings.chunksPerSecond,
        window: settings.window,
        phaseSeconds: settings.phaseSeconds,
        maxChunks: settings.maxChunks,
      }));
    const kept = results[kind].fanout;
    results[kind].fanout = kept.length ? phases.map((p, i) => better(kept[i]!, p)) : phases;
  }
}
if (only.has("pipeline") && targets.has("relay")) {
  log("relay: pipeline latency (model → worker → relay → visitor)");
  results.pipeline = await withServer("relay", (s) =>
    runLoad<PipelineResult>({
      type: "pipeline",
      target: target(s),
      turns: settings.turns,
      words: settings.words,
      modelDelayMs: settings.modelDelayMs,
      workerCore: loadCore,
    }));
}

let hostile: HostileResult | null = null;
if (only.has("hostile") && targets.has("relay")) {
  log("relay: memory and an honest visitor's latency under hostile sockets (shipped limits)");
  // The shipped limits, not the raised ones: the phase measures what they hold. Behind a
  // proxy (as nginx deploys it), so attackers and the honest visitor have their own keys.
  hostile = await withServer(
    "relay",
    (s) =>
      runLoad<HostileResult>(
        { type: "hostile", target: target(s), phaseSeconds: settings.hostileSeconds },
        HOSTILE_SCRIPT,
      ),
    { LOG_LEVEL: "info", TRUST_PROXY: "true" },
  );
}

/** What a phase's own section says of the run: date, command, machine, pinning, load. */
function sectionContext(loadBefore: string) {
  const m = results.machine;
  return {
    date: results.date,
    command: results.command,
    machine: `${m.cpu}, ${m.cores} cores, Deno ${m.deno}`,
    pinned: results.pinned,
    load: `${loadBefore} before, ${loadAverage()} after`,
  };
}

let capacitySection: string | null = null;
if (only.has("capacity")) {
  const loadBefore = loadAverage();
  const capacity = await runCapacity(settings.capacity, { loadCore, targets, withServer, log });
  capacitySection = renderCapacity(capacity, sectionContext(loadBefore));
}

let redisSection: string | null = null;
if (only.has("redis")) {
  const found = await new Deno.Command("redis-server", { args: ["--version"], stdout: "null" })
    .output().then((o) => o.success, () => false);
  if (!found) log("redis phase skipped: no redis-server on PATH (apt-get install redis-server)");
  else {
    const loadBefore = loadAverage();
    const redis = await runRedisPhase({
      ...settings.redis,
      chunksPerSecond: settings.chunksPerSecond,
      window: settings.window,
      phaseSeconds: settings.phaseSeconds,
      maxChunks: settings.maxChunks,
      rounds: settings.rounds,
    }, {
      serverCore,
      relayFlags,
      runLoad: (job) => runLoad<FanoutResult[]>(job),
      log,
    });
    redisSection = renderRedis(redis, sectionContext(loadBefore));
  }
}

// A capacity- or hostile-only run leaves the other generated sections (and figures) as they were.
const mainPhases = ["memory", "fanout", "pipeline"].some((p) => only.has(p));
const section = mainPhases ? renderReport(results) : null;
const hostileSection = hostile && [
  HOSTILE_BEGIN_MARKER,
  "",
  `Measured ${results.date} with \`${results.command}\`; ${results.pinned}.`,
  "",
  hostileTable(hostile),
  "",
  HOSTILE_END_MARKER,
].join("\n");
// deno-lint-ignore no-console
console.log(
  [section, hostileSection, capacitySection, redisSection].filter(Boolean).join("\n\n"),
);
if (out !== "-") {
  if (section) await writeReport(out, section);
  if (hostileSection) {
    await writeReport(out, hostileSection, {
      begin: HOSTILE_BEGIN_MARKER,
      end: HOSTILE_END_MARKER,
    });
  }
  if (capacitySection) {
    await writeReport(out, capacitySection, { begin: CAPACITY_BEGIN, end: CAPACITY_END });
  }
  if (redisSection) await writeReport(out, redisSection, { begin: REDIS_BEGIN, end: REDIS_END });
  log(`wrote ${out} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
