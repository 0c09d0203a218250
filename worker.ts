/**
 * terrarium-worker: the LLM-host side (SPEC §4–§5). Connects out to the relay, claims
 * turns, runs the tool loop against the OpenAI-compatible agent and streams answers back.
 * It checks at start that it runs under exactly the grants its config needs.
 *
 * Usage: worker.ts [--env-file=PATH] [--check]
 * `--check` stops after the start-up checks (config, grants, prompt files) with 0 or 78.
 */
import { ConfigError, envFileArg } from "./lib/env.ts";
import { Logger } from "./lib/log.ts";
import { AgentClient } from "./lib/worker/agent_client.ts";
import { ChatLog } from "./lib/worker/chat_log.ts";
import { loadWorkerConfig, type WorkerConfig } from "./lib/worker/config.ts";
import { checkGrants } from "./lib/worker/grants_check.ts";
import { HealthReporter } from "./lib/worker/health_reporter.ts";
import { workerGrants } from "./lib/worker/permissions.ts";
import { loadSystemPrompt } from "./lib/worker/prompts.ts";
import { RelayClient } from "./lib/worker/relay_client.ts";
import { Scheduler } from "./lib/worker/scheduler.ts";
import { loadSiteWords, SiteWordsPublisher } from "./lib/worker/site_words.ts";
import { ToolRegistry } from "./lib/worker/tool_registry.ts";
import { allTools } from "./lib/worker/tools/mod.ts";
import { TurnRunner } from "./lib/worker/turn_runner.ts";

const EX_CONFIG = 78;

function fail(message: string): number {
  // deno-lint-ignore no-console
  console.error(`terrarium-worker: ${message}`);
  return EX_CONFIG;
}

/** The one line for a relay that refuses this worker's credentials, naming what to fix. */
function rejectedMessage(
  config: WorkerConfig,
  envFile: string | undefined,
  error: { code: string; message: string },
): string {
  const where = envFile ? ` in ${envFile}` : "";
  if (error.code === "bad_signature") {
    return `The relay at ${config.apiBaseUrl} refused the request signature (401 bad_signature: ` +
      `${error.message}); set HMAC_SECRET${where} to the relay's HMAC_SECRET and check this ` +
      "host's clock";
  }
  return `The relay at ${config.apiBaseUrl} refused SERVICE_TOKEN (401 ${error.code}); set ` +
    `SERVICE_TOKEN${where} to the relay's SERVICE_TOKEN`;
}

async function main(): Promise<number> {
  const envFile = envFileArg(Deno.args);
  let config: WorkerConfig;
  try {
    config = loadWorkerConfig(envFile);
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message);
    throw error;
  }
  // Folded: during a relay outage every token's failed chunk would be a line of its own.
  const log = new Logger("worker", config.logLevel, undefined, { foldWindowMs: 10_000 });

  const grants = await checkGrants(workerGrants(config, envFile));
  if (grants.missing.length) {
    return fail(
      `its permissions do not match its configuration; it needs:\n  ${
        grants.missing.join("\n  ")
      }\n` +
        "Start it with `deno task worker` or a binary built by `deno task build` for this config.",
    );
  }
  for (const what of grants.broader) {
    log.warn(`SANDBOX WEAKENED: the worker was granted ${what}; run it with its own flags only`);
  }

  const registry = new ToolRegistry(allTools(config));
  let systemPrompt: string;
  try {
    systemPrompt = await loadSystemPrompt(config.contentDir, registry);
  } catch (error) {
    return fail((error as Error).message);
  }
  let siteWords;
  try {
    siteWords = await loadSiteWords(config.contentDir);
  } catch (error) {
    return fail((error as Error).message);
  }
  if (Deno.args.includes("--check")) {
    // `deno task doctor`: config, grants and prompt files are fine; connect to nothing.
    // deno-lint-ignore no-console
    console.log("terrarium-worker: config, permission grants and prompt files are fine");
    return 0;
  }
  const agent = new AgentClient({
    baseUrl: config.agentBaseUrl,
    apiKey: config.agentApiKey,
    model: config.agentModel,
    timeoutMs: config.agentTimeoutMs,
    idleTimeoutMs: config.agentIdleTimeoutMs,
    maxRetries: config.agentMaxRetries,
  });
  const relay = new RelayClient(config, log);
  const chatLog = new ChatLog(config.chatLogDir, log);
  const health = new HealthReporter(config, relay, agent, log);
  const runner = new TurnRunner({
    relay,
    model: agent,
    registry,
    systemPrompt,
    config,
    log,
    chatLog,
    onModelStatus: (report) => health.modelObserved(report),
  });
  const scheduler = new Scheduler({ relay, run: (turn) => runner.run(turn), config, log });
  relay.onActivity((chatId) => scheduler.hint(chatId));
  relay.onCancel((_chatId, turnId) => runner.cancel(turnId));
  relay.onChunkRefused((chunk, code) => runner.chunkRefused(chunk, code));
  relay.onConnection((connected) => connected && scheduler.hint(null));
  const siteWordsPublisher = new SiteWordsPublisher(config.contentDir, siteWords, { relay, log });
  // A relay that restarted on an empty store gets the words again on the next connect.
  relay.onConnection((connected) => connected && void siteWordsPublisher.publish());
  // A refused token is a configuration error: say so once and stop with 78, which the
  // unit does not restart, instead of retrying quietly forever (issue 15).
  relay.onRejected((error) => {
    log.flush();
    Deno.exit(fail(rejectedMessage(config, envFile, error)));
  });

  relay.start();
  scheduler.start();
  health.start();
  siteWordsPublisher.start();
  log.info("worker started", {
    workerId: config.workerId,
    relay: config.apiBaseUrl,
    tools: registry.names(),
    maxConcurrentChats: config.maxConcurrentChats,
  });

  await new Promise<void>((resolve) => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(signal, () => resolve());
    }
  });
  log.info("shutting down", { running: runner.activeCount });
  const finishing = scheduler.stop();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    finishing,
    new Promise((r) => timer = setTimeout(r, config.shutdownGraceMs)),
  ]);
  clearTimeout(timer);
  runner.abortAll("shutdown");
  await finishing;
  health.stop();
  siteWordsPublisher.stop();
  await relay.stop();
  log.flush();
  log.info("stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main());
