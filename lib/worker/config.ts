/** The worker's configuration (SPEC §4, §9): env names in, a resolved `WorkerConfig` out. */
import { resolve } from "node:path";
import { z } from "zod";
import {
  envBool,
  envInt,
  envList,
  envNotPlaceholder,
  envOptionalSecret,
  envSecret,
  parseEnv,
  readEnv,
} from "../env.ts";
import { isLogLevel, type LogLevel } from "../log.ts";

/** Every variable the worker reads; `--allow-env` grants exactly these. */
export const WORKER_ENV_NAMES = [
  "API_BASE_URL",
  "SERVICE_TOKEN",
  "HMAC_ENABLED",
  "HMAC_SECRET",
  "WORKER_WS_URL",
  "WORKER_ID",
  "AGENT_API_URL",
  "AGENT_MODEL",
  "AGENT_API_KEY",
  "AGENT_HEALTH_URL",
  "AGENT_TIMEOUT_SECONDS",
  "AGENT_IDLE_TIMEOUT_SECONDS",
  "AGENT_MAX_RETRIES",
  "MAX_TOOL_STEPS",
  "MAX_TOOL_CALLS_PER_STEP",
  "TURN_DEADLINE_SECONDS",
  "FINAL_ANSWER_SECONDS",
  "HISTORY_TOKEN_BUDGET",
  "POLL_INTERVAL_SECONDS",
  "STATUS_POLL_INTERVAL_SECONDS",
  "LLM_STATUS_POLL_INTERVAL_SECONDS",
  "MAX_CONCURRENT_CHATS",
  "MAX_CHAT_QUEUE_SIZE",
  "SHUTDOWN_GRACE_SECONDS",
  "SEARCH_API_URL",
  "SEARCH_API_KEY",
  "LIVE_SITE_BASE_URL",
  "LIVE_ALLOWED_HOSTS",
  "LIVE_ALLOWED_URLS",
  "CONTENT_DIR",
  "ENHANCEMENT_DIR",
  "ENHANCEMENT_REQUESTS_PER_DAY",
  "GITHUB_OWNER",
  "CHAT_LOG_DIR",
  "LOG_LEVEL",
] as const;

/** The worker's resolved configuration. URLs are absolute; dirs are absolute paths. */
export interface WorkerConfig {
  /** The relay, including any base path, without a trailing slash. */
  apiBaseUrl: string;
  serviceToken: string;
  hmacEnabled: boolean;
  hmacSecret: string;
  /** `ws(s)://…/api/worker/updates`, derived from `apiBaseUrl` when unset. */
  workerWsUrl: string;
  workerId: string;
  /** The chat-completions endpoint, normalised to end in `/chat/completions`. */
  agentChatUrl: string;
  /** The OpenAI SDK base URL (`…/v1`). */
  agentBaseUrl: string;
  agentModel: string;
  agentApiKey: string;
  /** "" disables the agent health probe (the LLM probe still runs). */
  agentHealthUrl: string;
  agentTimeoutMs: number;
  agentIdleTimeoutMs: number;
  agentMaxRetries: number;
  maxToolSteps: number;
  /** Tool calls of one model step that run; more end the tool work. */
  maxToolCallsPerStep: number;
  /** Wall-clock time for a turn's tool work, after which the model must answer without tools. */
  turnDeadlineMs: number;
  /** Time for that final answer; past it the turn fails (`TurnDeadlineError`). */
  finalAnswerMs: number;
  historyTokenBudget: number;
  pollIntervalMs: number;
  statusPollIntervalMs: number;
  llmStatusPollIntervalMs: number;
  maxConcurrentChats: number;
  maxChatQueueSize: number;
  /** On SIGTERM, how long running answers may finish before their leases are released. */
  shutdownGraceMs: number;
  /** "" when web search is not configured. */
  searchApiUrl: string;
  searchApiKey: string;
  liveSiteBaseUrl: string;
  liveAllowedHosts: string[];
  liveAllowedUrls: string[];
  contentDir: string;
  enhancementDir: string;
  /** Enhancement requests all chats together may write per UTC day. */
  enhancementRequestsPerDay: number;
  githubOwner: string;
  /** "" disables chat logs. */
  chatLogDir: string;
  logLevel: LogLevel;
}

function httpUrl(required: boolean) {
  return z.string().optional().transform((value, ctx) => {
    if (value === undefined) {
      if (required) ctx.addIssue({ code: "custom", message: "is required" });
      return "";
    }
    try {
      const url = new URL(value);
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("scheme");
      return url.href.replace(/\/+$/, "");
    } catch {
      ctx.addIssue({ code: "custom", message: `must be an http(s) URL, got "${value}"` });
      return z.NEVER;
    }
  });
}

const schema = z.object({
  API_BASE_URL: httpUrl(true),
  SERVICE_TOKEN: envSecret("token", false, ""),
  HMAC_ENABLED: envBool(false),
  HMAC_SECRET: envOptionalSecret("token", false),
  WORKER_WS_URL: z.string().optional().refine((v) => v === undefined || /^wss?:\/\//.test(v), {
    message: "must be a ws:// or wss:// URL",
  }),
  WORKER_ID: z.string().regex(/^[A-Za-z0-9_.:-]{1,60}$/).optional(),
  AGENT_API_URL: httpUrl(true),
  AGENT_MODEL: envNotPlaceholder("terra"),
  AGENT_API_KEY: z.string().optional(),
  AGENT_HEALTH_URL: httpUrl(false),
  AGENT_TIMEOUT_SECONDS: envInt(120, 1, 3600),
  AGENT_IDLE_TIMEOUT_SECONDS: envInt(30, 1, 3600),
  AGENT_MAX_RETRIES: envInt(2, 0, 10),
  MAX_TOOL_STEPS: envInt(4, 0, 20),
  MAX_TOOL_CALLS_PER_STEP: envInt(5, 1, 50),
  TURN_DEADLINE_SECONDS: envInt(180, 1, 3600),
  FINAL_ANSWER_SECONDS: envInt(60, 1, 3600),
  HISTORY_TOKEN_BUDGET: envInt(6000, 256, 1_000_000),
  POLL_INTERVAL_SECONDS: envInt(5, 1, 3600),
  STATUS_POLL_INTERVAL_SECONDS: envInt(30, 1, 86_400),
  LLM_STATUS_POLL_INTERVAL_SECONDS: envInt(300, 1, 86_400),
  MAX_CONCURRENT_CHATS: envInt(2, 1, 64),
  MAX_CHAT_QUEUE_SIZE: envInt(32, 1, 10_000),
  SHUTDOWN_GRACE_SECONDS: envInt(10, 0, 3600),
  SEARCH_API_URL: httpUrl(false),
  SEARCH_API_KEY: z.string().optional(),
  LIVE_SITE_BASE_URL: httpUrl(false),
  LIVE_ALLOWED_HOSTS: envList(),
  LIVE_ALLOWED_URLS: envList(),
  CONTENT_DIR: z.string().default("content"),
  ENHANCEMENT_DIR: z.string().default("data/enhancements"),
  ENHANCEMENT_REQUESTS_PER_DAY: envInt(20, 0, 10_000),
  GITHUB_OWNER: z.string().default(""),
  CHAT_LOG_DIR: z.string().optional(),
  LOG_LEVEL: z.string().default("info").refine(isLogLevel, {
    message: "must be debug, info, warn or error",
  }),
}).superRefine((env, ctx) => {
  if (env.HMAC_ENABLED && !env.HMAC_SECRET) {
    ctx.addIssue({
      code: "custom",
      path: ["HMAC_SECRET"],
      message: "is required when HMAC_ENABLED is true",
    });
  }
  for (const [i, host] of env.LIVE_ALLOWED_HOSTS.entries()) {
    if (!/^[a-z0-9.-]+(:\d+)?$/i.test(host)) {
      ctx.addIssue({
        code: "custom",
        path: ["LIVE_ALLOWED_HOSTS"],
        message: `entry ${i + 1} "${host}" is not a host name`,
      });
    }
  }
  for (const [i, url] of env.LIVE_ALLOWED_URLS.entries()) {
    if (!URL.canParse(url) || !url.startsWith("https://")) {
      ctx.addIssue({
        code: "custom",
        path: ["LIVE_ALLOWED_URLS"],
        message: `entry ${i + 1} "${url}" is not an https URL`,
      });
    }
  }
  // Also with a bad field elsewhere, so every problem is reported at once.
}, { when: () => true });

/** `…/v1` or `…/v1/chat/completions` → both forms. */
export function agentUrls(agentApiUrl: string): { baseUrl: string; chatUrl: string } {
  const trimmed = agentApiUrl.replace(/\/+$/, "");
  const baseUrl = trimmed.replace(/\/chat\/completions$/, "");
  return { baseUrl, chatUrl: `${baseUrl}/chat/completions` };
}

/** The worker socket URL derived from the relay's base URL. */
export function workerSocketUrl(apiBaseUrl: string): string {
  return `${apiBaseUrl.replace(/^http/, "ws")}/api/worker/updates`;
}

/** Resolves raw env strings into a `WorkerConfig`, or throws a `ConfigError` naming each problem. */
export function parseWorkerConfig(raw: Record<string, string | undefined>): WorkerConfig {
  const env = parseEnv(schema, raw);
  const { baseUrl, chatUrl } = agentUrls(env.AGENT_API_URL);
  return {
    apiBaseUrl: env.API_BASE_URL,
    serviceToken: env.SERVICE_TOKEN,
    hmacEnabled: env.HMAC_ENABLED,
    hmacSecret: env.HMAC_SECRET ?? "",
    workerWsUrl: env.WORKER_WS_URL ?? workerSocketUrl(env.API_BASE_URL),
    workerId: env.WORKER_ID ?? `worker-${crypto.randomUUID().slice(0, 8)}`,
    agentChatUrl: chatUrl,
    agentBaseUrl: baseUrl,
    agentModel: env.AGENT_MODEL,
    agentApiKey: env.AGENT_API_KEY ?? "",
    agentHealthUrl: env.AGENT_HEALTH_URL,
    agentTimeoutMs: env.AGENT_TIMEOUT_SECONDS * 1000,
    agentIdleTimeoutMs: env.AGENT_IDLE_TIMEOUT_SECONDS * 1000,
    agentMaxRetries: env.AGENT_MAX_RETRIES,
    maxToolSteps: env.MAX_TOOL_STEPS,
    maxToolCallsPerStep: env.MAX_TOOL_CALLS_PER_STEP,
    turnDeadlineMs: env.TURN_DEADLINE_SECONDS * 1000,
    finalAnswerMs: env.FINAL_ANSWER_SECONDS * 1000,
    historyTokenBudget: env.HISTORY_TOKEN_BUDGET,
    pollIntervalMs: env.POLL_INTERVAL_SECONDS * 1000,
    statusPollIntervalMs: env.STATUS_POLL_INTERVAL_SECONDS * 1000,
    llmStatusPollIntervalMs: env.LLM_STATUS_POLL_INTERVAL_SECONDS * 1000,
    maxConcurrentChats: env.MAX_CONCURRENT_CHATS,
    maxChatQueueSize: env.MAX_CHAT_QUEUE_SIZE,
    shutdownGraceMs: env.SHUTDOWN_GRACE_SECONDS * 1000,
    searchApiUrl: env.SEARCH_API_URL,
    searchApiKey: env.SEARCH_API_KEY ?? "",
    liveSiteBaseUrl: env.LIVE_SITE_BASE_URL,
    liveAllowedHosts: env.LIVE_ALLOWED_HOSTS.map((h) => h.toLowerCase()),
    liveAllowedUrls: env.LIVE_ALLOWED_URLS,
    contentDir: resolve(env.CONTENT_DIR),
    enhancementDir: resolve(env.ENHANCEMENT_DIR),
    enhancementRequestsPerDay: env.ENHANCEMENT_REQUESTS_PER_DAY,
    githubOwner: env.GITHUB_OWNER,
    chatLogDir: env.CHAT_LOG_DIR ? resolve(env.CHAT_LOG_DIR) : "",
    logLevel: env.LOG_LEVEL as LogLevel,
  };
}

/** Reads the worker's variables (env file first, environment wins) and resolves them. */
export function loadWorkerConfig(envFile?: string): WorkerConfig {
  return parseWorkerConfig(readEnv(WORKER_ENV_NAMES, envFile));
}
