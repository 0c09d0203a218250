/**
 * `GET /api/metrics`: the JSON snapshot the original relay served (and its smoke script
 * reads), with its `http`, `ws` and `logs` sections and their original fields, plus a
 * little more: requests by route group, open visitor sockets per chat and the most recent
 * log lines. `/metrics` stays the Prometheus exposition.
 */
import type { RelayDeps } from "./deps.ts";

/** Chats listed in `ws.chats`, the busiest first; the total is always exact. */
const MAX_CHATS_LISTED = 100;
const MAX_LINE_CHARS = 2_000;
const REDACTED = "[redacted]";

/**
 * The last log lines, bounded in count and length. Lines are already field-redacted by the
 * logger; the ring also blanks every configured secret wherever it appears (an error
 * message quoting a URL, say) and `accessCode=` query values, since this is served.
 */
export class LogRing {
  #lines: string[] = [];
  #max: number;
  #secrets: string[];

  constructor(max = 50, secrets: readonly string[] = []) {
    this.#max = max;
    // Longest first, so a secret containing another is blanked whole.
    this.#secrets = secrets.filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
  }

  /** Keeps `line`, dropping the oldest beyond the bound. */
  push(line: string): void {
    let clean = line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line;
    for (const secret of this.#secrets) clean = clean.replaceAll(secret, REDACTED);
    clean = clean.replace(/(accessCode=)[^&\s"\\]*/gi, `$1${REDACTED}`);
    if (this.#lines.length >= this.#max) this.#lines.shift();
    this.#lines.push(clean);
  }

  /** The kept lines, oldest first. */
  get lines(): readonly string[] {
    return this.#lines;
  }
}

/** The snapshot body. */
export interface MetricsSnapshot {
  http: {
    requests: number;
    errors: number;
    avgLatencyMs: number;
    byGroup: Record<string, number>;
    rateLimited: number;
  };
  ws: {
    chatConnections: number;
    workerConnections: number;
    chats: Record<string, number>;
    rejected: number;
  };
  logs: { queueLength: number; dropped: number; recent: unknown[] };
  turns: { open: number };
}

/** Builds the snapshot from the relay's counters, hubs and log ring. */
export function metricsSnapshot(deps: RelayDeps): MetricsSnapshot {
  const { metrics, service } = deps;
  const requests = metrics.total("terrarium_http_requests_total");
  const seconds = metrics.total("terrarium_http_request_seconds_total");
  const byGroup: Record<string, number> = {};
  for (const group of ["visitor", "worker", "admin", "metrics", "healthz", "page"]) {
    const n = metrics.total("terrarium_http_requests_total", (l) => l.group === group);
    if (n) byGroup[group] = n;
  }
  const perChat = [...service.visitors.countsByChat()].sort((a, b) => b[1] - a[1]);
  return {
    http: {
      requests,
      // As the original counted them: responses with a 5xx status.
      errors: metrics.total("terrarium_http_requests_total", (l) => Number(l.status) >= 500),
      avgLatencyMs: requests ? Math.round((seconds / requests) * 100_000) / 100 : 0,
      byGroup,
      rateLimited: metrics.total("terrarium_http_requests_total", (l) => l.status === "429"),
    },
    ws: {
      chatConnections: service.visitors.size,
      workerConnections: service.workers.size,
      chats: Object.fromEntries(perChat.slice(0, MAX_CHATS_LISTED)),
      rejected: metrics.total("terrarium_ws_rejected_total"),
    },
    logs: {
      // The original queued chat-log file writes; this relay writes the store directly,
      // so nothing queues and nothing is dropped.
      queueLength: 0,
      dropped: 0,
      recent: (deps.recentLogs?.lines ?? []).map(parseLine),
    },
    turns: { open: service.queue.size },
  };
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return line;
  }
}
