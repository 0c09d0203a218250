/**
 * The servers under test, each a real process pinned to the server core: the relay started
 * through `runArgs("relay")` with its real permission flags (as `tests/_relay_process.ts`
 * does), and the bare forwarder.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runArgs } from "../lib/launch.ts";
import { freePort, TEST_SECRETS } from "../tests/_relay_process.ts";
import type { Target } from "./clients.ts";
import { spawnPinned } from "./process.ts";

/** A running server under test. */
export interface Server extends Target {
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
    async stop() {
      await child.stop();
      await cleanup();
    },
  };
}
