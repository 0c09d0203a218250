/**
 * Worker heartbeats and component reports, feeding `/api/health` (SPEC §3). Any request or
 * socket frame from a worker counts as a heartbeat; reports come from `/api/worker/status`.
 * Kept in the store (heartbeats at most every few seconds) so the chain survives a restart.
 *
 * On a store several relays share (Redis, issue 14) a worker may be connected to another
 * relay only: `currentHealth()` then reads the store's workers again when the last read is
 * older than `refreshMs` (so at most one read per interval, however often `/api/health` is
 * asked) and keeps, per worker, the newer heartbeat and the newer report. On Deno KV this
 * relay is the only writer, so it never reads back.
 */
import { delay } from "../delay.ts";
import {
  CHAIN_LABELS,
  type ChainLink,
  type ComponentReport,
  type HealthLink,
  type HealthResponse,
} from "../protocol.ts";
import type { ChatStore, WorkerRecord } from "./store/chat_store.ts";

const PERSIST_EVERY_MS = 5_000;
/** On a shared store, how old the last read of other relays' workers may be. */
const REFRESH_EVERY_MS = 2_000;
/** How long a health answer waits for that read before it answers from memory. */
const REFRESH_WAIT_MS = 500;
/** Workers unheard of for this long are forgotten (a worker without WORKER_ID gets a new id per start). */
const FORGET_AFTER_MS = 7 * 24 * 3600_000;

export class WorkerRegistry {
  #store: ChatStore;
  #staleMs: number;
  #workers = new Map<string, WorkerRecord>();
  #persistedAt = new Map<string, number>();
  #refreshMs: number;
  #refreshedAtMs = -Infinity;
  #refreshing: Promise<void> | null = null;

  /**
   * `staleMs`: a worker unheard of for longer is not ready. `refreshMs`: how often to read
   * other relays' heartbeats; by default every 2 s on a shared store, never on one relay's.
   */
  constructor(store: ChatStore, staleMs: number, options: { refreshMs?: number } = {}) {
    this.#store = store;
    this.#staleMs = staleMs;
    this.#refreshMs = options.refreshMs ?? (store.shared ? REFRESH_EVERY_MS : 0);
  }

  /** Loads the last known workers; call once at start. */
  async load(): Promise<void> {
    await this.refresh();
  }

  /** Reads the stored workers, keeping per worker the newer heartbeat and the newer report. */
  async refresh(nowMs = Date.now()): Promise<void> {
    const stored = await this.#store.listWorkers();
    this.#refreshedAtMs = nowMs;
    for (const record of stored) {
      const mine = this.#workers.get(record.workerId);
      if (!mine) {
        this.#workers.set(record.workerId, { ...record });
        continue;
      }
      mine.lastSeenAtMs = Math.max(mine.lastSeenAtMs, record.lastSeenAtMs);
      if (record.reportedAtMs > mine.reportedAtMs) {
        mine.report = record.report;
        mine.reportedAtMs = record.reportedAtMs;
      }
    }
  }

  /**
   * `health()`, after reading other relays' heartbeats when the last read is older than
   * `refreshMs` (waiting at most 500 ms for it; a store that fails or is slow leaves the
   * answer to memory, and a failed read is tried again after the next interval).
   */
  async currentHealth(frontendServed: boolean, nowMs = Date.now()): Promise<HealthResponse> {
    if (this.#refreshMs > 0 && nowMs - this.#refreshedAtMs >= this.#refreshMs) {
      if (!this.#refreshing) {
        this.#refreshedAtMs = nowMs; // one read per interval, failed or not
        this.#refreshing = this.refresh(nowMs)
          .catch(() => {})
          .finally(() => {
            this.#refreshing = null;
          });
      }
      const waited = new AbortController();
      await Promise.race([this.#refreshing, delay(REFRESH_WAIT_MS, { signal: waited.signal })]);
      waited.abort();
    }
    return this.health(frontendServed, nowMs);
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
    await this.#store.putWorker(record, FORGET_AFTER_MS);
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
