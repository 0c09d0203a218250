/**
 * Starts the worker as a real process through `runArgs("worker")`: the same permission
 * flags `deno task worker` and the build use, derived from the env file it is given.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startModelServer } from "../lib/demo_model/model_server.ts";
import { runArgs } from "../lib/tasks/launch.ts";
import { chatHistory, type Json, visitorToken } from "./_clients.ts";
import { type ChildProcess, spawnDeno } from "./_process.ts";
import { type RelayProcess, startRelay, TEST_SECRETS } from "./_relay_process.ts";

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

/** Runs `fn` with a relay process, a model server and cleanup of everything it started. */
export async function withStack(
  relayEnv: Record<string, string>,
  fn: (stack: {
    relay: RelayProcess;
    model: ReturnType<typeof startModelServer>;
    token: string;
    workers: WorkerProcess[];
    worker: (env?: Record<string, string>) => Promise<WorkerProcess>;
  }) => Promise<void>,
): Promise<void> {
  const relay = await startRelay({ RATE_LIMIT_MAX_PER_IP: "1000", ...relayEnv });
  const model = startModelServer({ chunkDelayMs: 2 });
  const workers: WorkerProcess[] = [];
  try {
    const token = await visitorToken(relay.url);
    const worker = async (env: Record<string, string> = {}) => {
      const w = await startWorker(relay.url, model.url, relay.dir, env);
      workers.push(w);
      return w;
    };
    await fn({ relay, model, token, workers, worker });
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    await model.close();
    await relay.kill();
    await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
  }
}

/** Waits (bounded) until `chatId` has `count` Terra replies; returns the history. */
export async function waitForReplies(
  relay: RelayProcess,
  token: string,
  chatId: string,
  count: number,
  timeoutMs = 30_000,
): Promise<Json[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const messages = await chatHistory(relay.url, token, chatId);
    if (messages.filter((m: Json) => m.sender === "Terra").length >= count) return messages;
    if (Date.now() > deadline) {
      throw new Error(
        `No ${count} replies in ${chatId} within ${timeoutMs} ms: ${JSON.stringify(messages)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
