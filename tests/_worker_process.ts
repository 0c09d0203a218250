/**
 * Starts the worker as a real process through `runArgs("worker")`: the same permission
 * flags `deno task worker` and the build use, derived from the env file it is given.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runArgs } from "../lib/launch.ts";
import { type ChildProcess, spawnDeno } from "./_process.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

export const CONTENT_DIR = fileURLToPath(new URL("../content", import.meta.url));

/** A running worker with its env file and dirs. */
export interface WorkerProcess extends ChildProcess {
  envFile: string;
  dir: string;
  env: Record<string, string>;
}

/** Writes an env file for the worker and returns its path. */
export async function writeWorkerEnv(dir: string, env: Record<string, string>): Promise<string> {
  const envFile = join(dir, `worker-${crypto.randomUUID().slice(0, 6)}.env`);
  const text = Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n");
  await Deno.writeTextFile(envFile, text + "\n");
  return envFile;
}

/** The default test config: relay and model on loopback, sample content, fast polling. */
export function workerEnv(
  relayUrl: string,
  modelUrl: string,
  dir: string,
  env: Record<string, string> = {},
): Record<string, string> {
  return {
    API_BASE_URL: relayUrl,
    SERVICE_TOKEN: TEST_SECRETS.SERVICE_TOKEN,
    AGENT_API_URL: modelUrl,
    AGENT_HEALTH_URL: modelUrl.replace(/\/v1$/, "/health"),
    CONTENT_DIR: CONTENT_DIR,
    ENHANCEMENT_DIR: join(dir, "enhancements"),
    POLL_INTERVAL_SECONDS: "1",
    AGENT_TIMEOUT_SECONDS: "20",
    AGENT_IDLE_TIMEOUT_SECONDS: "5",
    LOG_LEVEL: "debug",
    ...env,
  };
}

/** Starts a worker and waits for its "worker started" line. */
export async function startWorker(
  relayUrl: string,
  modelUrl: string,
  dir: string,
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const fullEnv = workerEnv(relayUrl, modelUrl, dir, env);
  const envFile = await writeWorkerEnv(dir, fullEnv);
  const child = spawnDeno(runArgs("worker", envFile));
  try {
    await child.waitForLine('"msg":"worker started"');
  } catch (error) {
    await child.kill();
    throw error;
  }
  return { ...child, envFile, dir, env: fullEnv };
}
