/**
 * The Redis engine's phase (issue 14): chunk fan-out over the worker socket for
 *
 * - `bare`: the floor (bench/bare_forwarder.ts);
 * - `kv`: one relay on Deno KV (the default engine);
 * - `redis`: one relay on Redis (`REDIS_URL`);
 * - `cross`: two relays on one Redis, the worker socket on relay B and the visitor sockets on
 *   relay A, so every chunk crosses from B to A through Redis (CPU of both relays summed).
 *
 * redis-server runs with the shipped configuration (`systemd/redis-terrarium.conf`) and is
 * pinned with the servers under test; its CPU is reported beside the relays'. Rounds
 * alternate the four setups and each phase keeps its better round, as the fan-out phase does.
 */
import { better, type FanoutResult } from "./fanout.ts";
import type { FanoutJob } from "./load.ts";
import { loadName } from "./report.ts";
import {
  BENCH_RELAY_ENV,
  type RedisFsync,
  type RedisServer,
  type Server,
  startBareForwarder,
  startRedisServer,
  startRelayServer,
} from "./servers.ts";

/** The four setups, in the order each round runs them. */
export const REDIS_SETUPS = ["bare", "kv", "redis", "cross"] as const;
export type RedisSetup = typeof REDIS_SETUPS[number];

/** What the phase runs. */
export interface RedisSettings {
  socketCounts: number[];
  chunksPerSecond: number;
  window: number;
  phaseSeconds: number;
  maxChunks: number;
  rounds: number;
  fsync: RedisFsync;
}

/** What the phase measured, per setup, and what went wrong. */
export interface RedisResults {
  settings: RedisSettings;
  /** The redis-server the runs used (version, config, appendfsync). */
  redis: string;
  setups: Record<RedisSetup, FanoutResult[]>;
  /** Per setup: a failed load job, or error/warn lines the relays logged (a few). */
  problems: Partial<Record<RedisSetup, string[]>>;
}

/** What the phase needs from bench/main.ts. */
export interface RedisEnv {
  serverCore: number | null;
  relayFlags: string[];
  runLoad(job: FanoutJob): Promise<FanoutResult[]>;
  log(text: string): void;
}

/** Log lines of a relay worth reporting: errors and warnings (JSON logs). */
const PROBLEM = /"level":"(error|warn|fatal)"/;
/** Log lines worth reporting after the relay began to shut down. */
const SHUTDOWN_PROBLEM = /"level":"(error|fatal)"/;
/** At most this many problem lines per setup go into the report. */
const MAX_PROBLEMS = 12;

/** Servers of one setup: the visitors' server, where chunks go in, and what CPU to read. */
interface Setup {
  visitors: Server;
  source?: Server;
  redis?: RedisServer;
  servers: Server[];
}

async function startSetup(setup: RedisSetup, settings: RedisSettings, env: RedisEnv) {
  const { serverCore: core, relayFlags } = env;
  const started: Setup = { visitors: null!, servers: [] };
  const relay = async (extra: Record<string, string> = {}) => {
    const server = await startRelayServer(core, relayFlags, { ...BENCH_RELAY_ENV, ...extra });
    started.servers.push(server);
    return server;
  };
  try {
    if (setup === "bare") {
      started.visitors = await startBareForwarder(core);
      started.servers.push(started.visitors);
    } else if (setup === "kv") started.visitors = await relay();
    else {
      started.redis = await startRedisServer(core, settings.fsync);
      const redisEnv = { REDIS_URL: started.redis.url };
      started.visitors = await relay(redisEnv);
      if (setup === "cross") started.source = await relay(redisEnv);
    }
    return started;
  } catch (error) {
    await stopSetup(started);
    throw error;
  }
}

async function stopSetup(setup: Setup): Promise<void> {
  for (const server of setup.servers) await server.stop().catch(() => {});
  await setup.redis?.stop().catch(() => {});
}

const target = (s: Server) => ({ kind: s.kind, url: s.url, pid: s.pid });

/** Runs every round of the phase; a setup that fails is reported, not fatal to the rest. */
export async function runRedisPhase(
  settings: RedisSettings,
  env: RedisEnv,
): Promise<RedisResults> {
  const results: RedisResults = {
    settings,
    redis: "",
    setups: { bare: [], kv: [], redis: [], cross: [] },
    problems: {},
  };
  const problem = (setup: RedisSetup, text: string) => {
    const list = results.problems[setup] ??= [];
    if (list.length < MAX_PROBLEMS) list.push(text);
  };
  for (let round = 1; round <= settings.rounds; round++) {
    for (const setup of REDIS_SETUPS) {
      env.log(`redis phase, ${setup}: chunk fan-out, round ${round} of ${settings.rounds}`);
      let started: Setup;
      try {
        started = await startSetup(setup, settings, env);
      } catch (error) {
        problem(setup, `did not start: ${(error as Error).message.split("\n")[0]}`);
        continue;
      }
      if (started.redis) results.redis = started.redis.description;
      try {
        const phases = await env.runLoad({
          type: "fanout",
          label: setup,
          target: target(started.visitors),
          source: started.source && target(started.source),
          alsoPids: started.source && [started.source.pid],
          besidePid: started.redis?.pid,
          socketCounts: settings.socketCounts,
          rateOnlyCounts: [],
          vias: ["socket"],
          chunksPerSecond: settings.chunksPerSecond,
          window: settings.window,
          phaseSeconds: settings.phaseSeconds,
          maxChunks: settings.maxChunks,
        });
        // Kept rounds are the better ones: a loss in the other round must still be told.
        for (const p of phases) {
          const where = `round ${round}, ${p.sockets} sockets, ${loadName(p)}`;
          const expected = p.chunksSent * p.sockets;
          if (p.lost > 0) problem(setup, `${where}: ${p.lost} of ${expected} deliveries lost`);
          if (p.misordered) {
            problem(setup, `${where}: ${p.misordered} frames out of order or repeated`);
          }
        }
        const kept = results.setups[setup];
        results.setups[setup] = kept.length ? phases.map((p, i) => better(kept[i]!, p)) : phases;
      } catch (error) {
        const lines = (error as Error).message.split("\n");
        const reason = lines.find((l) => l.startsWith("ERROR "))?.slice(6) ?? lines[0];
        problem(setup, `load job failed: ${reason}`);
      } finally {
        // After the stop, so an error on the way down is seen too.
        await stopSetup(started);
        started.servers.forEach((server, i) => {
          const name = started.servers.length > 1 ? (i === 0 ? "relay A" : "relay B") : "relay";
          const down = server.lines.findIndex((l) => l.includes('"msg":"shutting down"'));
          server.lines.forEach((line, at) => {
            // On the way down only errors count: a relay on Redis warns "redis connection
            // lost; reconnecting" as it closes its own connection.
            const pattern = down >= 0 && at > down ? SHUTDOWN_PROBLEM : PROBLEM;
            if (pattern.test(line)) problem(setup, `${name}: ${line.slice(0, 400)}`);
          });
        });
      }
    }
  }
  return results;
}
