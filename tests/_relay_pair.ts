/**
 * Two relay processes on one test `redis-server` (issue 14), each started by `startRelay` with
 * its real derived permissions (its own port and exactly the Redis host), plus the demo model
 * and real workers on either relay. Everything is stopped by PID and its temp dir removed.
 */
import { startModelServer } from "../lib/demo_model/model_server.ts";
import { assert } from "./_assert.ts";
import { type Json, request } from "./_clients.ts";
export { eventually } from "./_clients.ts";
import { type RedisOptions, type RedisProcess, startRedis } from "./_redis_process.ts";
import { type RelayProcess, startRelay, TEST_SECRETS } from "./_relay_process.ts";
import { startWorker, type WorkerProcess } from "./_worker_process.ts";

/** Which of the two relays. */
export type Side = "a" | "b";

/** A running pair: Redis, relays `a` and `b` on it, the demo model, workers started so far. */
export interface RelayPair {
  redis: RedisProcess;
  /** The relay now running on that side (a new process after `restart()`). */
  relay(side: Side): RelayProcess;
  /** Starts the relay of `side` again (after a kill) on the same port, on the same Redis. */
  restart(side: Side): Promise<RelayProcess>;
  model: ReturnType<typeof startModelServer>;
  /** Starts a real worker connected to the relay of `side`. */
  worker(side: Side, env?: Record<string, string>): Promise<WorkerProcess>;
  /** The env both relays were started with (REDIS_URL included). */
  env: Record<string, string>;
}

/** Options of `withRelayPair()`. */
export interface RelayPairOptions {
  /** @default {"none"} */
  durability?: RedisOptions["durability"];
  /** The demo model's pause between streamed deltas. @default {5} */
  chunkDelayMs?: number;
}

/** Relay settings every pair test wants: one client key (127.0.0.1) opens many sockets. */
const PAIR_ENV: Record<string, string> = {
  WEB_DIR: "",
  RATE_LIMIT_MAX_PER_IP: "100000",
  RATE_LIMIT_MAX_PER_CHAT: "100000",
  MAX_SOCKETS_PER_IP: "1000",
  MAX_SOCKETS_PER_CHAT: "1000",
  MAX_PENDING_SOCKETS: "1000",
};

/** Runs `fn` with Redis, two relays on it and the demo model; always stops everything. */
export async function withRelayPair(
  env: Record<string, string>,
  options: RelayPairOptions,
  fn: (pair: RelayPair) => Promise<void>,
): Promise<void> {
  const redis = await startRedis({ durability: options.durability ?? "none" });
  const fullEnv = { ...PAIR_ENV, ...env, REDIS_URL: redis.url };
  const relays: Partial<Record<Side, RelayProcess>> = {};
  const dirs: string[] = [];
  const workers: WorkerProcess[] = [];
  const workerDir = await Deno.makeTempDir({ prefix: "terrarium-pair-workers-" });
  const model = startModelServer({ chunkDelayMs: options.chunkDelayMs ?? 5 });
  try {
    const started = await Promise.all([startRelay(fullEnv), startRelay(fullEnv)]);
    [relays.a, relays.b] = started;
    dirs.push(...started.map((r) => r.dir));
    await fn({
      redis,
      env: fullEnv,
      model,
      relay: (side) => relays[side]!,
      async restart(side) {
        const old = relays[side]!;
        await old.kill();
        const relay = await startRelay(fullEnv, { port: old.port });
        dirs.push(relay.dir);
        relays[side] = relay;
        return relay;
      },
      async worker(side, workerEnv = {}) {
        const worker = await startWorker(relays[side]!.url, model.url, workerDir, workerEnv);
        workers.push(worker);
        return worker;
      },
    });
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    await Promise.all(Object.values(relays).map((r) => r?.kill()));
    await model.close();
    await redis.dispose();
    for (const dir of [...dirs, workerDir]) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
}

/**
 * The value of an unlabelled metric, or the sum of a labelled one's series whose labels
 * include `labels` (e.g. `transition="expired"`), from `/metrics`.
 */
export async function metricTotal(
  relay: RelayProcess,
  name: string,
  labels = "",
): Promise<number> {
  const res = await request(`${relay.url}/metrics`, {
    headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
  });
  assert(res.status === 200, `/metrics: ${res.status}`);
  return String(res.body).split("\n")
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .filter((l) => labels === "" || l.slice(0, l.lastIndexOf(" ")).includes(labels))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/** The sequence numbers of a socket's events past `ready` (what a visitor was sent). */
export function eventSeqs(events: Json[]): number[] {
  return events.filter((e) => e.type !== "ready" && typeof e.seq === "number").map((e) => e.seq);
}

/** The highest `seq` a visitor saw (its `ready` included): what it resumes from. */
export function lastSeq(events: Json[]): number {
  return Math.max(0, ...events.filter((e) => typeof e.seq === "number").map((e) => e.seq));
}

/** Terra's replies among a socket's events. */
export function terraMessages(events: Json[]): Json[] {
  return events.filter((e) => e.type === "message" && e.sender === "Terra");
}
