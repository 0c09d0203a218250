/**
 * Health of the worker's side of the chain (SPEC §4): the agent's health endpoint every
 * `STATUS_POLL_INTERVAL_SECONDS`, a tiny LLM completion every
 * `LLM_STATUS_POLL_INTERVAL_SECONDS`, both reported to `/api/worker/status`. The first
 * result and every change of status (up → down, down → up) is logged with the URL and the
 * cause, so a model server that is not running shows in the log before a visitor asks.
 */
import type { Logger } from "../log.ts";
import { networkCause } from "../network_cause.ts";
import type { ComponentReport } from "../protocol.ts";
import type { AgentClient } from "./agent_client.ts";
import type { WorkerConfig } from "./config.ts";
import type { RelayClient } from "./relay_client.ts";

const PROBE_TIMEOUT_MS = 10_000;

/** Probes `url` with a GET; online on 2xx, degraded on other answers, offline on none. */
export async function probeHealthUrl(url: string): Promise<ComponentReport> {
  const started = performance.now();
  const checkedAt = new Date().toISOString();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    await response.body?.cancel();
    const latencyMs = Math.round(performance.now() - started);
    return response.ok
      ? { status: "online", detail: "Health check passed", checkedAt, latencyMs }
      : {
        status: "degraded",
        detail: `Health check answered ${response.status}`,
        checkedAt,
        latencyMs,
      };
  } catch (error) {
    return {
      status: "offline",
      detail: `Health check failed: ${networkCause(error)}`,
      checkedAt,
      latencyMs: null,
    };
  }
}

export class HealthReporter {
  #config: WorkerConfig;
  #relay: Pick<RelayClient, "reportStatus">;
  #agent: Pick<AgentClient, "probe">;
  #log: Logger;
  #agentApi: ComponentReport = { status: "unknown", detail: "Not checked yet", latencyMs: null };
  #llm: ComponentReport = { status: "unknown", detail: "Not checked yet", latencyMs: null };
  #timers: ReturnType<typeof setInterval>[] = [];
  /** The status last logged per component; a change is logged once. */
  #logged = new Map<string, string>();

  constructor(
    config: WorkerConfig,
    relay: Pick<RelayClient, "reportStatus">,
    agent: Pick<AgentClient, "probe">,
    log: Logger,
  ) {
    this.#config = config;
    this.#relay = relay;
    this.#agent = agent;
    this.#log = log;
  }

  /** Probes both now, then on their intervals. */
  start(): void {
    void this.checkAgent().then(() => this.checkLlm());
    this.#timers.push(
      setInterval(() => void this.checkAgent(), this.#config.statusPollIntervalMs),
      setInterval(() => void this.checkLlm(), this.#config.llmStatusPollIntervalMs),
    );
  }

  /** Stops probing. */
  stop(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
  }

  /** Reports what a turn just showed about the model now, not at the next poll (issue 16). */
  modelObserved(llm: ComponentReport): void {
    this.#llm = llm;
    if (!this.#config.agentHealthUrl) this.#agentApi = { ...llm };
    void this.#report();
  }

  /** Probes the agent health URL (or, without one, reports the LLM probe) and reports. */
  async checkAgent(): Promise<void> {
    if (this.#config.agentHealthUrl) {
      this.#agentApi = await probeHealthUrl(this.#config.agentHealthUrl);
      this.#logChange("agent", this.#agentApi, { url: this.#config.agentHealthUrl });
    }
    await this.#report();
  }

  /** Runs the tiny completion and reports. */
  async checkLlm(): Promise<void> {
    const checkedAt = new Date().toISOString();
    const probe = await this.#agent.probe(AbortSignal.timeout(PROBE_TIMEOUT_MS * 3));
    this.#llm = {
      status: probe.ok ? "online" : "offline",
      detail: probe.detail,
      checkedAt,
      latencyMs: probe.ok ? probe.latencyMs : null,
    };
    this.#logChange("model", this.#llm, {
      url: this.#config.agentBaseUrl,
      model: this.#config.agentModel,
    });
    if (!this.#config.agentHealthUrl) {
      this.#agentApi = {
        ...this.#llm,
        detail: `No health URL; the API ${probe.ok ? "answered" : "did not answer"}`,
      };
    }
    await this.#report();
  }

  /** Logs `report` when `component` had no status yet or another one. */
  #logChange(component: string, report: ComponentReport, fields: Record<string, string>): void {
    const before = this.#logged.get(component);
    if (before === report.status) return;
    this.#logged.set(component, report.status);
    const entry = { ...fields, status: report.status, detail: report.detail, was: before ?? null };
    const state = report.status === "online"
      ? "up"
      : report.status === "offline"
      ? "down"
      : "degraded";
    // Logged only on a change, so never folded: a quick down-up-down shows as it happened.
    this.#log.unfolded(state === "up" ? "info" : "warn", `${component} is ${state}`, entry);
  }

  async #report(): Promise<void> {
    try {
      await this.#relay.reportStatus({ agentApi: this.#agentApi, llm: this.#llm });
    } catch (error) {
      this.#log.warn("status report failed", { error });
    }
  }
}
