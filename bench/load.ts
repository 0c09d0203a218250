/**
 * The load generator: a process of its own (pinned away from the server under test) that
 * runs one job against one server and prints `RESULT <json>` as its last line.
 *
 * Usage: `deno run --allow-all bench/load.ts '<job json>'` (bench/main.ts writes the job).
 */
import {
  chunkSource,
  closeAll,
  openVisitors,
  relaySession,
  type Target,
  type Via,
} from "./clients.ts";
import { DeliveryTracker, type FanoutResult, type Mode, runPhase } from "./fanout.ts";
import { runPipeline } from "./pipeline.ts";
import { rssKib } from "./proc.ts";
import { delay as sleep } from "../lib/delay.ts";

/** Memory per idle visitor socket: RSS before and after opening `counts` sockets. */
export interface MemoryJob {
  type: "memory";
  target: Target;
  counts: number[];
  settleMs: number;
}

/** Fan-out phases at each socket count, for each way in, at a fixed rate and at saturation. */
export interface FanoutJob {
  type: "fanout";
  target: Target;
  /** Ascending; sockets are added, not reopened, between counts. */
  socketCounts: number[];
  /** Socket counts that only get the fixed-rate phases (the single-hop floor). */
  rateOnlyCounts: number[];
  vias: Via[];
  chunksPerSecond: number;
  window: number;
  phaseSeconds: number;
  maxChunks: number;
  /**
   * Where chunks go in, when not `target` (the visitors' server): relay B of a cross-relay
   * pair on one Redis, so every chunk reaches the visitors through the other relay.
   */
  source?: Target;
  /** More processes whose CPU counts as the server's (relay B), summed with `target`'s. */
  alsoPids?: number[];
  /** A process whose CPU is reported beside the server's (redis-server). */
  besidePid?: number;
  /** The name progress lines use (the target's kind by default). */
  label?: string;
}

/** The whole-pipeline latency run (the target is a relay). */
export interface PipelineJob {
  type: "pipeline";
  target: Target;
  turns: number;
  words: number;
  modelDelayMs: number;
  workerCore: number | null;
}

export type LoadJob = MemoryJob | FanoutJob | PipelineJob;

/** One memory reading. */
export interface MemoryPoint {
  sockets: number;
  rssKib: number;
  deltaKib: number;
  kibPerSocket: number;
}

const progress = (text: string) => Deno.stderr.writeSync(new TextEncoder().encode(`  ${text}\n`));

async function memory(job: MemoryJob): Promise<{ baselineKib: number; points: MemoryPoint[] }> {
  const { target } = job;
  const token = await relaySession(target);
  // Visitors each open their own chat, as on the site; the bare forwarder has no chats.
  const chatOf = (i: number) => `m${i}`;
  // Warm the handshake path first, so its code and first allocations are in the baseline.
  await closeAll(await openVisitors(target, token, 50, (i) => `warm${i}`, () => {}));
  await sleep(job.settleMs);
  const baselineKib = rssKib(target.pid);
  const sockets: WebSocket[] = [];
  const points: MemoryPoint[] = [];
  try {
    for (const count of job.counts) {
      const more = await openVisitors(
        target,
        token,
        count - sockets.length,
        (i) => chatOf(sockets.length + i),
        () => {},
      );
      sockets.push(...more);
      await sleep(job.settleMs);
      const rss = rssKib(target.pid);
      points.push({
        sockets: count,
        rssKib: rss,
        deltaKib: rss - baselineKib,
        kibPerSocket: (rss - baselineKib) / count,
      });
      progress(`${target.kind} memory: ${count} sockets, +${rss - baselineKib} KiB`);
    }
  } finally {
    await closeAll(sockets);
  }
  return { baselineKib, points };
}

async function fanout(job: FanoutJob): Promise<FanoutResult[]> {
  const { target } = job;
  const token = await relaySession(target);
  const tracker = new DeliveryTracker();
  const sockets: WebSocket[] = [];
  const chatId = "fan";
  const results: FanoutResult[] = [];
  const counts = [...new Set([...job.rateOnlyCounts, ...job.socketCounts])].sort((a, b) => a - b);
  // The source opens the chat's turn with a visitor message: open the sockets' chat first.
  // Each socket numbered across the batches, so the tracker checks each one's order.
  const numbered = (first: number) => (data: string, at: number, i = 0) =>
    tracker.frame(data, at, first + i);
  sockets.push(...await openVisitors(target, token, counts[0]!, () => chatId, numbered(0)));
  const source = await chunkSource(job.source ?? target, chatId, token);
  const pids = { pid: target.pid, alsoPids: job.alsoPids, besidePid: job.besidePid };
  try {
    tracker.sockets = sockets.length;
    for (const via of job.vias) {
      // Warm-up (not reported): JIT and connection pools, both ways in.
      await runPhase(source, tracker, {
        ...pids,
        via,
        mode: { kind: "saturate", window: job.window },
        seconds: 1,
        maxChunks: 500,
      });
    }
    for (const count of counts) {
      sockets.push(
        ...await openVisitors(
          target,
          token,
          count - sockets.length,
          () => chatId,
          numbered(sockets.length),
        ),
      );
      tracker.sockets = count;
      await sleep(300);
      const modes: Mode[] = [{ kind: "rate", chunksPerSecond: job.chunksPerSecond }];
      // The window counts chunks; deliveries in flight are window × sockets, so it shrinks
      // as sockets grow to keep the queues (and the latency they add) comparable.
      const window = Math.max(8, Math.round(job.window * 100 / Math.max(count, 100)));
      if (job.socketCounts.includes(count)) modes.push({ kind: "saturate", window });
      for (const via of job.vias) {
        for (const mode of modes) {
          const result = await runPhase(source, tracker, {
            ...pids,
            via,
            mode,
            seconds: job.phaseSeconds,
            maxChunks: mode.kind === "rate"
              ? Math.ceil(job.chunksPerSecond * job.phaseSeconds)
              : job.maxChunks,
          });
          results.push(result);
          progress(
            `${job.label ?? target.kind} ${count} sockets ${via} ${mode.kind}: ` +
              `p50 ${result.latency.p50.toFixed(2)} ms, ` +
              `${Math.round(result.deliveriesPerSecond)} deliveries/s, lost ${result.lost}`,
          );
        }
      }
    }
  } finally {
    await source.close();
    await closeAll(sockets);
  }
  return results;
}

if (import.meta.main) {
  const job = JSON.parse(Deno.args[0] ?? "{}") as LoadJob;
  let result: unknown;
  try {
    if (job.type === "memory") result = await memory(job);
    else if (job.type === "fanout") result = await fanout(job);
    else if (job.type === "pipeline") {
      result = await runPipeline(job.target, job);
    } else throw new TypeError(`Unknown load job "${JSON.stringify(job)}"`);
  } catch (error) {
    // On stdout too, so bench/main.ts can put the reason into the report.
    // deno-lint-ignore no-console
    console.log(`ERROR ${String((error as Error)?.message ?? error).split("\n")[0]}`);
    throw error;
  }
  // deno-lint-ignore no-console
  console.log(`RESULT ${JSON.stringify(result)}`);
  // Pooled HTTP connections and timers of the clients must not keep the process alive.
  Deno.exit(0);
}
