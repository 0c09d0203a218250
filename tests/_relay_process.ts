/**
 * Starts the relay as a real process, through `runArgs("relay")`: the same permission
 * flags `deno task relay` and the build use. Config goes in through an env file; the child
 * sees no other environment. Every wait is bounded; `stop()`/`kill()` always reap.
 */
import { join } from "node:path";
import { runArgs } from "../lib/launch.ts";
import { spawnDeno } from "./_process.ts";

export const TEST_SECRETS = {
  CHAT_PASSWORD: "open-sesame-42",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
  ADMIN_TOKEN: "adm-0123456789abcdef0123456789abcdef",
} as const;

/** A running relay process. */
export interface RelayProcess {
  /** "http://127.0.0.1:PORT" */
  url: string;
  port: number;
  dir: string;
  kvPath: string;
  envFile: string;
  env: Record<string, string>;
  /** Every stdout/stderr line so far (JSON log lines and anything else). */
  lines: string[];
  /** SIGTERM, then wait for exit (bounded); returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL, then wait for exit. */
  kill(): Promise<void>;
  /** Resolves with the exit status. */
  status: Promise<Deno.CommandStatus>;
}

/** A TCP port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function envFileText(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n";
}

/** Options of `startRelay` and `writeRelayEnv`. */
export interface RelayOptions {
  dir?: string;
  port?: number;
  timeoutMs?: number;
  /** Runs deno through this command (see `spawnDeno`). */
  wrapper?: string[];
}

/** Writes the relay's env file (test defaults overridden by `env`) into `dir`, a temp dir by default. */
export async function writeRelayEnv(
  env: Record<string, string> = {},
  options: RelayOptions = {},
): Promise<
  { dir: string; port: number; kvPath: string; envFile: string; env: Record<string, string> }
> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "terrarium-relay-" });
  const port = options.port ?? freePort();
  const fullEnv: Record<string, string> = {
    ...TEST_SECRETS,
    PORT: String(port),
    HOSTNAME: "127.0.0.1",
    KV_PATH: join(dir, "kv", "relay.kv"),
    LOG_LEVEL: "info",
    WS_IDLE_TIMEOUT_SECONDS: "10",
    // Every test client is 127.0.0.1, one client key: load and flow tests would meet the
    // open-turn caps meant for one visitor. Tests of the caps set their own.
    MAX_OPEN_TURNS_PER_CLIENT: "100000",
    MAX_OPEN_TURNS: "100000",
    ...env,
  };
  const envFile = join(dir, "relay.env");
  await Deno.writeTextFile(envFile, envFileText(fullEnv));
  return { dir, port, kvPath: fullEnv.KV_PATH!, envFile, env: fullEnv };
}

/**
 * Starts a relay in `dir` (a new temp dir by default) and waits for its "listening" line.
 * `env` overrides the test defaults; pass the same `dir`/`port` to restart on the same KV.
 */
export async function startRelay(
  env: Record<string, string> = {},
  options: RelayOptions = {},
): Promise<RelayProcess> {
  const { dir, port, kvPath, envFile, env: fullEnv } = await writeRelayEnv(env, options);
  const child = spawnDeno(runArgs("relay", envFile), {}, { wrapper: options.wrapper });
  const timeoutMs = options.timeoutMs ?? 20_000;
  try {
    await child.waitForLine('"msg":"listening"', timeoutMs);
  } catch (error) {
    await child.kill();
    throw new Error(`Relay did not start: ${(error as Error).message}`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    kvPath,
    envFile,
    env: fullEnv,
    lines: child.lines,
    status: child.status,
    kill: child.kill,
    stop: () => child.stop(10_000),
  };
}

/** Runs `fn` with a fresh relay and always stops it and removes its dir. */
export async function withRelay(
  env: Record<string, string>,
  fn: (relay: RelayProcess) => Promise<void>,
): Promise<void> {
  const relay = await startRelay(env);
  try {
    await fn(relay);
  } finally {
    await relay.kill();
    await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
  }
}
