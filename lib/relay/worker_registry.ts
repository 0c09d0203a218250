/**
 * Worker heartbeats and component reports, feeding `/api/health` (SPEC §3). Any request or
 * socket frame from a worker counts as a heartbeat; reports come from `/api/worker/status`.
 * Stored in KV (heartbeats at most every few seconds) so the chain survives a restart.
 */
import {
  CHAIN_LABELS,
  type ChainLink,
  type ComponentReport,
  type HealthLink,
  type HealthResponse,
} from "../protocol.ts";
import { workerKey, workersPrefix } from "./_kv_keys.ts";

interface WorkerRecord {
  workerId: string;
  lastSeenAtMs: number;
  report: { agentApi: ComponentReport; llm: ComponentReport } | null;
  reportedAtMs: number;
}

const PERSIST_EVERY_MS = 5_000;
/** Workers unheard of for this long are forgotten (a worker without WORKER_ID gets a new id per start). */
const FORGET_AFTER_MS = 7 * 24 * 3600_000;

export class WorkerRegistry {
  #kv: Deno.Kv;
  #staleMs: number;
  #workers = new Map<string, WorkerRecord>();
  #persistedAt = new Map<string, number>();

  constructor(kv: Deno.Kv, staleMs: number) {
    this.#kv = kv;
    this.#staleMs = staleMs;
  }

  /** Loads the last known workers; call once at start. */
  async load(): Promise<void> {
    for await (const entry of this.#kv.list<WorkerRecord>({ prefix: workersPrefix() })) {
      this.#workers.set(entry.value.workerId, entry.value);
    }
  }

  /** Records that `workerId` is alive. */
  async seen(workerId: string, nowMs = Date.now()): Promise<void> {
    const record = this.#record(workerId);
    record.lastSeenAtMs = nowMs;
    if (nowMs - (this.#persistedAt.get(workerId) ?? 0) >= PERSIST_EVERY_MS) {
      // Best effort: the heartbeat lives in memory, and callers fire and forget it, so a
      // store that cannot write (full disk) must not reject here and crash the relay.
      await this.#persist(record, nowMs).catch(() => this.#persistedAt.delete(workerId));
    }
  }

  /** Stores a worker's component report (and counts as a heartbeat). */
  async report(
    workerId: string,
    report: { agentApi: ComponentReport; llm: ComponentReport },
    nowMs = Date.now(),
  ): Promise<void> {
    const record = this.#record(workerId);
    record.lastSeenAtMs = nowMs;
    // Only the component statuses: the report body also carries the worker's id (and, over
    // the socket, the event type), which `/api/health` must not publish.
    record.report = { agentApi: report.agentApi, llm: report.llm };
    record.reportedAtMs = nowMs;
    await this.#persist(record, nowMs);
  }

  /** The health document: the freshest worker decides the worker, agent and llm links. */
  health(frontendServed: boolean, nowMs = Date.now()): HealthResponse {
    let freshest: WorkerRecord | null = null;
    for (const [id, record] of this.#workers) {
      if (nowMs - record.lastSeenAtMs > FORGET_AFTER_MS) {
        this.#workers.delete(id);
        this.#persistedAt.delete(id);
        continue;
      }
      if (!freshest || record.lastSeenAtMs > freshest.lastSeenAtMs) freshest = record;
    }
    const now = new Date(nowMs).toISOString();
    const ready = freshest !== null && nowMs - freshest.lastSeenAtMs <= this.#staleMs;
    const lastSeen = freshest ? new Date(freshest.lastSeenAtMs).toISOString() : null;
    const chain: ChainLink[] = [
      {
        name: "frontend",
        status: frontendServed ? "online" : "unknown",
        detail: frontendServed ? "Served by the relay" : "Served from another host",
        checkedAt: now,
        latencyMs: null,
      },
      {
        name: "relay",
        status: "online",
        detail: "Accepting requests",
        checkedAt: now,
        latencyMs: 0,
      },
      {
        name: "worker",
        status: ready ? "online" : "offline",
        detail: !freshest
          ? "No worker has connected yet"
          : ready
          ? "Connected"
          : `Last seen ${Math.round((nowMs - freshest.lastSeenAtMs) / 1000)} s ago`,
        checkedAt: lastSeen,
        latencyMs: null,
      },
      componentLink("agent", ready ? freshest?.report?.agentApi : undefined),
      componentLink("llm", ready ? freshest?.report?.llm : undefined),
    ];
    return {
      relay: "ok",
      workerReady: ready,
      workerLastSeenAt: lastSeen,
      workerStatus: ready && freshest?.report ? freshest.report : null,
      chain: chain.map(withLegacyFields),
    };
  }

  #record(workerId: string): WorkerRecord {
    let record = this.#workers.get(workerId);
    if (!record) {
      record = { workerId, lastSeenAtMs: 0, report: null, reportedAtMs: 0 };
      this.#workers.set(workerId, record);
    }
    return record;
  }

  async #persist(record: WorkerRecord, nowMs: number): Promise<void> {
    this.#persistedAt.set(record.workerId, nowMs);
    await this.#kv.set(workerKey(record.workerId), record, { expireIn: FORGET_AFTER_MS });
  }
}

/** Adds the original page's `id` and `label` to a link. */
function withLegacyFields(link: ChainLink): HealthLink {
  return { id: link.name, label: CHAIN_LABELS[link.name], ...link };
}

function componentLink(name: "agent" | "llm", report: ComponentReport | undefined): ChainLink {
  if (!report) {
    return {
      name,
      status: "unknown",
      detail: "No fresh report from a worker",
      checkedAt: null,
      latencyMs: null,
    };
  }
  return {
    name,
    status: report.status,
    detail: report.detail,
    checkedAt: report.checkedAt ?? null,
    latencyMs: report.latencyMs ?? null,
  };
}
