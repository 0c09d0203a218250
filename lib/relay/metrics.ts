/** A small Prometheus registry: counters and gauges rendered in text exposition format 0.0.4. */

type Labels = Record<string, string>;

interface Family {
  help: string;
  type: "counter" | "gauge";
  /** By rendered label text; the labels are kept so `total()` can filter on them. */
  values: Map<string, { labels: Labels; value: number }>;
}

function labelText(labels: Labels | undefined): string {
  if (!labels) return "";
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

export class Metrics {
  #families = new Map<string, Family>();
  #gauges = new Map<string, () => number>();

  /** Declares a counter. */
  counter(name: string, help: string): void {
    this.#families.set(name, { help, type: "counter", values: new Map() });
  }

  /** Declares a gauge read from `read` at scrape time. */
  gauge(name: string, help: string, read: () => number): void {
    this.#families.set(name, { help, type: "gauge", values: new Map() });
    this.#gauges.set(name, read);
  }

  /** Adds `by` to a counter. */
  inc(name: string, labels?: Labels, by = 1): void {
    const family = this.#families.get(name);
    if (!family) throw new RangeError(`Unknown metric "${name}"`);
    const key = labelText(labels);
    const entry = family.values.get(key);
    if (entry) entry.value += by;
    else family.values.set(key, { labels: labels ?? {}, value: by });
  }

  /**
   * One label set of a counter, resolved once: `add()` skips rendering the labels, which
   * `inc()` does on every call (per HTTP request, 1-2 % of the relay's JavaScript on
   * `POST /agent-chunk`; issue 18).
   */
  counterAt(name: string, labels?: Labels): { add(by?: number): void } {
    const family = this.#families.get(name);
    if (!family) throw new RangeError(`Unknown metric "${name}"`);
    const key = labelText(labels);
    let entry = family.values.get(key);
    if (!entry) family.values.set(key, entry = { labels: labels ?? {}, value: 0 });
    const counted = entry;
    return {
      add(by = 1) {
        counted.value += by;
      },
    };
  }

  /** The sum of a counter over the label sets `where` accepts (all by default). */
  total(name: string, where: (labels: Labels) => boolean = () => true): number {
    let sum = 0;
    for (const { labels, value } of this.#families.get(name)?.values.values() ?? []) {
      if (where(labels)) sum += value;
    }
    return sum;
  }

  /** The exposition text. */
  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.#families) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
      const read = this.#gauges.get(name);
      if (read) lines.push(`${name} ${read()}`);
      else if (family.values.size === 0) lines.push(`${name} 0`);
      for (const [labels, { value }] of family.values) lines.push(`${name}${labels} ${value}`);
    }
    return lines.join("\n") + "\n";
  }
}

/** The relay's metrics, declared once. */
export function relayMetrics(gauges: {
  visitorSockets: () => number;
  workerSockets: () => number;
  openTurns: () => number;
  /** How long each access-code check waits now (the global failure budget). */
  accessCodeDelayMs?: () => number;
}): Metrics {
  const m = new Metrics();
  m.counter("terrarium_http_requests_total", "HTTP requests by route group and status");
  m.counter("terrarium_http_request_seconds_total", "Time spent answering HTTP requests");
  m.counter("terrarium_messages_total", "Messages stored, by sender");
  m.counter("terrarium_chunks_total", "Streamed chunks fanned out to visitors");
  m.counter("terrarium_deliveries_total", "Chunk deliveries attempted to visitor sockets");
  m.counter(
    "terrarium_turns_total",
    "Turn transitions (claimed, answered, expired, released, cancelled, failed, retried)",
  );
  m.counter("terrarium_sockets_dropped_total", "Visitor sockets dropped for not keeping up");
  m.counter("terrarium_ws_rejected_total", "WebSocket handshakes or frames refused, by reason");
  m.gauge("terrarium_visitor_sockets", "Visitor sockets open", gauges.visitorSockets);
  m.gauge("terrarium_worker_sockets", "Worker sockets open", gauges.workerSockets);
  m.gauge("terrarium_open_turns", "Turns waiting or being answered", gauges.openTurns);
  m.gauge(
    "terrarium_access_code_delay_seconds",
    "Wait before each access-code check (non-zero while many wrong codes arrive)",
    () => (gauges.accessCodeDelayMs?.() ?? 0) / 1000,
  );
  return m;
}
