/**
 * The worker's preflight: config, its grants (the worker itself, started with the flags
 * derived from this config, checks them and its prompt files, then exits), the relay
 * reachable and accepting SERVICE_TOKEN, the model server, the tools, the content, SearxNG
 * and every live-fetch host resolving to a public address.
 */
import { signRequest } from "../hmac.ts";
import { ConfigError } from "../env.ts";
import { runArgs } from "../launch.ts";
import { networkCause } from "../network_cause.ts";
import { loadWorkerConfig, type WorkerConfig } from "../worker/config.ts";
import { ToolRegistry } from "../worker/tool_registry.ts";
import { allTools } from "../worker/tools/mod.ts";
import { type Check, fail, ok, skip } from "./check.ts";
import { checkContentFiles, checkSitePages } from "./content_checks.ts";
import { checkAgentReachable, checkModelAnswers, checkToolsAccepted } from "./model_checks.ts";
import { nonPublicKind, resolveHost } from "./public_address.ts";

const TIMEOUT_MS = 15_000;

/** The worker's checks for `envFile`. */
export function workerChecks(envFile: string | undefined): Check[] {
  const where = envFile ?? "the environment";
  let config: WorkerConfig;
  try {
    config = loadWorkerConfig(envFile);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map((problem) => ({
      name: "config",
      run: () => fail(problem, `edit ${where}`),
    }));
  }
  const c = config;
  const tools = new ToolRegistry(allTools(c));
  return [
    { name: "config", run: () => ok(`${where} loads`) },
    { name: "grants", run: () => checkGrants(envFile) },
    { name: "relay reachable", run: () => checkRelayReachable(c) },
    { name: "token accepted", run: () => checkToken(c, where) },
    { name: "agent reachable", run: () => checkAgentReachable(c) },
    { name: "model answers", run: () => checkModelAnswers(c) },
    { name: "tools", run: () => checkToolsAccepted(c, tools.openAiTools()) },
    { name: "content", run: () => checkContentFiles(c.contentDir) },
    { name: "cached site", run: () => checkSitePages(c.contentDir) },
    { name: "SearxNG", run: () => checkSearch(c) },
    { name: "live hosts", run: () => checkLiveHosts(c) },
  ];
}

/** The worker, under the flags derived from this config, checks its grants and exits. */
async function checkGrants(envFile: string | undefined) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: runArgs("worker", envFile, ["--check"]),
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
  const lines = text.split("\n").filter((l) => l.trim() && !/^\S*Download\b/.test(l));
  if (output.success) return ok("the worker's permission flags match this config");
  const first = lines.slice(0, 3).join(" ").replace(/^terrarium-worker: /, "").slice(0, 300);
  if (/prompt file/.test(first)) {
    return fail(
      "the worker would stop at start: a prompt file is missing",
      "see the content check",
    );
  }
  return fail(
    first,
    "fix what it names; a binary must be rebuilt (`deno task build`) after a host changes",
  );
}

async function checkRelayReachable(config: WorkerConfig) {
  const url = `${config.apiBaseUrl}/api/health`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    await response.body?.cancel();
    if (response.ok) return ok(`${url} answered ${response.status}`);
    return fail(
      `${url} answered ${response.status}`,
      "API_BASE_URL must be the relay including its base path (e.g. https://example.com/terrarium)",
    );
  } catch (error) {
    return fail(
      `${url}: ${networkCause(error)}`,
      "start the relay, or fix API_BASE_URL (the relay, including its base path)",
    );
  }
}

async function checkToken(config: WorkerConfig, where: string) {
  const url = new URL(`${config.apiBaseUrl}/api/chats/open`);
  const headers: Record<string, string> = {
    "x-service-token": config.serviceToken,
    "x-worker-id": `${config.workerId}-doctor`,
  };
  if (config.hmacEnabled) {
    Object.assign(headers, await signRequest(config.hmacSecret, "GET", url.pathname + url.search));
  }
  let response: Response;
  try {
    response = await fetch(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    return fail(`${networkCause(error)}`, "see the relay check");
  }
  const body = await response.json().catch(() => ({})) as { code?: string; error?: string };
  if (response.ok) return ok("the relay accepts SERVICE_TOKEN");
  if (response.status === 401 && body.code === "bad_signature") {
    return fail(
      `401 bad_signature: ${body.error}`,
      `set HMAC_SECRET in ${where} to the relay's, and check this host's clock`,
    );
  }
  if (response.status === 401) {
    return fail(
      `the relay refused SERVICE_TOKEN (401 ${body.code ?? ""})`.trim(),
      `set SERVICE_TOKEN in ${where} to the relay's SERVICE_TOKEN`,
    );
  }
  return fail(`the relay answered ${response.status} ${body.code ?? ""}`.trim(), "see its log");
}

async function checkSearch(config: WorkerConfig) {
  if (!config.searchApiUrl) return skip("SEARCH_API_URL is not set: no web search");
  const url = new URL(config.searchApiUrl);
  url.searchParams.set("q", "terrarium");
  url.searchParams.set("format", "json");
  const headers: Record<string, string> = { accept: "application/json" };
  if (config.searchApiKey) headers.authorization = `Bearer ${config.searchApiKey}`;
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
    const body = await response.json().catch(() => null) as { results?: unknown } | null;
    if (response.ok && Array.isArray(body?.results)) {
      const n = body.results.length;
      return ok(`${config.searchApiUrl} answered with ${n} result${n === 1 ? "" : "s"}`);
    }
    return fail(
      `${config.searchApiUrl} answered ${response.status} without JSON results`,
      "enable the json format in SearxNG's settings.yml (search.formats), or fix SEARCH_API_URL",
    );
  } catch (error) {
    return fail(
      `${config.searchApiUrl}: ${networkCause(error)}`,
      "start SearxNG, or fix SEARCH_API_URL",
    );
  }
}

/** Every host the live-fetch tools may reach. */
function liveHosts(config: WorkerConfig): string[] {
  const hosts = new Set<string>();
  for (const entry of config.liveAllowedHosts) hosts.add(entry.replace(/:\d+$/, ""));
  for (const url of [config.liveSiteBaseUrl, ...config.liveAllowedUrls].filter(Boolean)) {
    hosts.add(new URL(url).hostname);
  }
  return [...hosts].sort();
}

async function checkLiveHosts(config: WorkerConfig) {
  const hosts = liveHosts(config);
  if (!hosts.length) return skip("no live-fetch hosts (LIVE_ALLOWED_HOSTS, LIVE_ALLOWED_URLS)");
  const problems: string[] = [];
  for (const host of hosts) {
    try {
      const addresses = await resolveHost(host);
      const bad = addresses.map((a) => [a, nonPublicKind(a)] as const).filter(([, k]) => k);
      if (bad.length) problems.push(`${host} resolves to ${bad[0]![0]} (${bad[0]![1]})`);
    } catch (error) {
      problems.push(`${host} does not resolve (${networkCause(error)})`);
    }
  }
  if (!problems.length) return ok(`${hosts.join(", ")} resolve to public addresses`);
  return fail(
    problems.join("; "),
    "live fetches are for public pages: remove the host from LIVE_ALLOWED_HOSTS / LIVE_ALLOWED_URLS or fix its DNS",
  );
}
