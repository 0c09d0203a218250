/**
 * The servers under test, each a real process pinned to the server core: the relay started
 * through `runArgs("relay")` with its real permission flags (as `tests/_relay_process.ts`
 * does), and the bare forwarder.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runArgs } from "../lib/tasks/launch.ts";
import { freePort, TEST_SECRETS } from "../tests/_relay_process.ts";
import type { Target } from "./clients.ts";
import { startRedis } from "../tests/_redis_process.ts";
import { spawnPinned, taskset } from "./process.ts";

/** A running server under test. */
export interface Server extends Target {
  /** The latest lines it printed (its log), to look for errors after a phase. */
  lines: string[];
  stop(): Promise<void>;
}

/**
 * Limits raised so one load generator on 127.0.0.1 may hold thousands of sockets and post
 * every chunk: the benchmark measures fan-out, not the abuse limits (SPEC §3).
 */
export const BENCH_RELAY_ENV: Record<string, string> = {
  MAX_SOCKETS_PER_IP: "20000",
  MAX_SOCKETS_PER_CHAT: "20000",
  RATE_LIMIT_MAX_PER_IP: "1000000",
  RATE_LIMIT_MAX_PER_CHAT: "1000000",
  MAX_OPEN_TURNS_PER_CLIENT: "1000000",
  MAX_OPEN_TURNS: "1000000",
  WORKER_WS_FRAMES_PER_SECOND: "1000000",
  TURN_LEASE_SECONDS: "3600",
  WS_IDLE_TIMEOUT_SECONDS: "60",
  LOG_LEVEL: "info",
};

/** Starts the relay on `core` with a fresh KV file; `stop()` also removes its dir. */
export async function startRelayServer(
  core: number | null,
  extraArgs: string[] = [],
  benchEnv: Record<string, string> = BENCH_RELAY_ENV,
): Promise<Server> {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-bench-relay-" });
  const port = freePort();
  const env = {
    ...TEST_SECRETS,
    PORT: String(port),
    HOSTNAME: "127.0.0.1",
    KV_PATH: join(dir, "kv", "relay.kv"),
    ...benchEnv,
  };
  const envFile = join(dir, "relay.env");
  await Deno.writeTextFile(
    envFile,
    Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n",
  );
  const args = runArgs("relay", envFile);
  // Flags such as --cpu-prof go before the script (the last argument before --env-file).
  const script = args.findIndex((a) => a.endsWith("relay.ts"));
  args.splice(script, 0, ...extraArgs);
  return await startListening("relay", args, core, port, async () => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  });
}

/** Starts the bare forwarder on `core`. */
export async function startBareForwarder(core: number | null): Promise<Server> {
  const port = freePort();
  const script = fileURLToPath(new URL("./bare_forwarder.ts", import.meta.url));
  const args = ["run", "--allow-net=127.0.0.1", script, `--port=${port}`];
  return await startListening("bare", args, core, port);
}

/** Spawns a server, waits for its "listening" log line, and stops it (then `cleanup`). */
async function startListening(
  kind: Server["kind"],
  args: string[],
  core: number | null,
  port: number,
  cleanup: () => Promise<void> = async () => {},
): Promise<Server> {
  const child = spawnPinned(args, { core });
  try {
    await child.waitForLine('"msg":"listening"');
  } catch (error) {
    await child.stop(0);
    throw error;
  }
  return {
    kind,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    lines: child.lines,
    async stop() {
      await child.stop();
      await cleanup();
    },
  };
}

/** How the benchmark's redis-server fsyncs its append-only file. */
export type RedisFsync = "always" | "everysec";

/** A running redis-server for the Redis engine's phase. */
export interface RedisServer {
  url: string;
  pid: number;
  /** What it runs with, for the report: config file, appendfsync, version. */
  description: string;
  stop(): Promise<void>;
}

/** The shipped configuration example (Debian's redis-server): appendonly yes, appendfsync always. */
export const REDIS_CONFIG = fileURLToPath(
  new URL("../systemd/redis-terrarium.conf", import.meta.url),
);

/**
 * Starts redis-server as the tests do (`tests/_redis_process.ts`: a free 127.0.0.1 port, a
 * temp dir, stopped by its PID) with the shipped configuration, `appendfsync` as given (the
 * file's own `always` by default; `everysec` is its faster, one-second-loss alternative), and
 * pins it (all its threads) to `core`, with the servers under test.
 */
export async function startRedisServer(
  core: number | null,
  fsync: RedisFsync = "always",
): Promise<RedisServer> {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-bench-redis-conf-" });
  // Redis reads `include` first and later lines win: the shipped file, then this run's fsync.
  const config = join(dir, "redis.conf");
  await Deno.writeTextFile(config, `include ${REDIS_CONFIG}\nappendfsync ${fsync}\n`);
  const redis = await startRedis({ configFile: config });
  try {
    const pin = core !== null ? taskset() : null;
    if (pin) {
      const out = await new Deno.Command(pin, {
        args: ["-a", "-p", "-c", String(core), String(redis.pid)],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) throw new Error(`taskset: ${new TextDecoder().decode(out.stderr)}`);
    }
  } catch (error) {
    await redis.dispose();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  return {
    url: redis.url,
    pid: redis.pid,
    description: `${await redisVersion()}, ${
      REDIS_CONFIG.split("/").slice(-2).join("/")
    } with appendfsync ${fsync}, its append-only file in a fresh temp dir (${
      redis.dir.slice(0, redis.dir.lastIndexOf("/")) || "/"
    })`,
    async stop() {
      await redis.dispose();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** `redis-server --version`, shortened to "Redis 7.0.15". */
async function redisVersion(): Promise<string> {
  const out = await new Deno.Command("redis-server", { args: ["--version"], stdout: "piped" })
    .output();
  const version = /v=(\S+)/.exec(new TextDecoder().decode(out.stdout))?.[1];
  return version ? `Redis ${version}` : "Redis (unknown version)";
}
