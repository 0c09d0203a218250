/**
 * The model server as the worker will use it: reachable (its health URL, or `/models`),
 * answering a one-token completion for `AGENT_MODEL`, and accepting the tool definitions
 * (vLLM without `--enable-auto-tool-choice` and llama.cpp without `--jinja` refuse them,
 * which a visitor would otherwise meet as a failed turn).
 */
import type OpenAI from "openai";
import { networkCause } from "../network_cause.ts";
import type { WorkerConfig } from "../worker/config.ts";
import { fail, ok } from "./check.ts";

const TIMEOUT_MS = 30_000;
const MAX_ERROR_CHARS = 200;

function headers(config: WorkerConfig): Record<string, string> {
  const out: Record<string, string> = { "content-type": "application/json" };
  if (config.agentApiKey) out.authorization = `Bearer ${config.agentApiKey}`;
  return out;
}

/** The server's error message from an OpenAI-style `{error: {message}}` body, shortened. */
async function errorText(response: Response): Promise<string> {
  const text = await response.text().catch(() => "");
  let message = text;
  try {
    const body = JSON.parse(text);
    message = body?.error?.message ?? body?.message ?? body?.detail ?? text;
  } catch { /* not JSON */ }
  message = String(message).replace(/\s+/g, " ").trim();
  return message.length > MAX_ERROR_CHARS ? `${message.slice(0, MAX_ERROR_CHARS)}…` : message;
}

/** The model names the server lists, or [] when it lists none. */
async function listModels(config: WorkerConfig): Promise<string[]> {
  try {
    const response = await fetch(`${config.agentBaseUrl}/models`, {
      headers: headers(config),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (!response.ok) return [];
    const body = await response.json() as { data?: { id?: string }[] };
    return (body.data ?? []).map((m) => m.id ?? "").filter(Boolean);
  } catch {
    return [];
  }
}

/** The agent's health URL (or, without one, `/models`) answers 2xx. */
export async function checkAgentReachable(config: WorkerConfig) {
  const url = config.agentHealthUrl || `${config.agentBaseUrl}/models`;
  const variable = config.agentHealthUrl ? "AGENT_HEALTH_URL" : "AGENT_API_URL";
  let response: Response;
  try {
    response = await fetch(url, {
      headers: headers(config),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await response.body?.cancel();
  } catch (error) {
    return fail(`${url}: ${networkCause(error)}`, `start the model server, or fix ${variable}`);
  }
  return response.ok
    ? ok(`${url} answered ${response.status}`)
    : fail(`${url} answered ${response.status}`, `check ${variable} (and AGENT_API_KEY)`);
}

/** A chat completion of at most one token, optionally offering `tools`. */
async function complete(config: WorkerConfig, tools?: OpenAI.ChatCompletionTool[]) {
  return await fetch(`${config.agentBaseUrl}/chat/completions`, {
    method: "POST",
    headers: headers(config),
    body: JSON.stringify({
      model: config.agentModel,
      messages: [{ role: "user", content: "ping" }],
      max_tokens: 1,
      stream: false,
      ...(tools ? { tools, tool_choice: "auto" } : {}),
    }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
}

/** `AGENT_MODEL` answers a one-token completion. */
export async function checkModelAnswers(config: WorkerConfig) {
  let response: Response;
  const started = performance.now();
  try {
    response = await complete(config);
  } catch (error) {
    return fail(
      `${config.agentBaseUrl}/chat/completions: ${networkCause(error)}`,
      "start the model server, or fix AGENT_API_URL",
    );
  }
  if (response.ok) {
    await response.body?.cancel();
    const ms = Math.round(performance.now() - started);
    return ok(`"${config.agentModel}" answered a one-token completion in ${ms} ms`);
  }
  const message = await errorText(response);
  const models = await listModels(config);
  const offered = models.length ? `; the server offers: ${models.slice(0, 10).join(", ")}` : "";
  const fix = response.status === 401 || response.status === 403
    ? "set AGENT_API_KEY to a key the model server accepts"
    : `set AGENT_MODEL to a model the server serves${offered}`;
  return fail(`"${config.agentModel}" got ${response.status}: ${message}`, fix);
}

/** The model server accepts the tool definitions the worker sends with every turn. */
export async function checkToolsAccepted(
  config: WorkerConfig,
  tools: OpenAI.ChatCompletionTool[],
) {
  let response: Response;
  try {
    response = await complete(config, tools);
  } catch (error) {
    return fail(`the request with tools failed: ${networkCause(error)}`, "see the model check");
  }
  if (response.ok) {
    await response.body?.cancel();
    return ok(`${tools.length} tools offered and accepted`);
  }
  return fail(
    `the server refused the ${tools.length} tools (${response.status}: ${await errorText(
      response,
    )})`,
    "enable tool calls on the model server (vLLM: --enable-auto-tool-choice --tool-call-parser …; llama.cpp: --jinja)",
  );
}
