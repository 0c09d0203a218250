/**
 * Structured JSON logs, one line per event on stdout (journald keeps them as they are).
 * Fields whose names look secret are redacted, so a careless `log.info("x", {token})`
 * cannot leak a credential; message bodies are never passed here by the callers.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_FIELD = /token|secret|password|passwd|accesscode|authorization|signature|cookie|key$/i;
const REDACTED = "[redacted]";

/** Whether `value` names a log level. */
export function isLogLevel(value: string): value is LogLevel {
  return value in LEVEL_RANK;
}

/** Deep-copies `fields`, replacing the values of secret-looking keys with "[redacted]". */
export function redact(fields: unknown, depth = 0): unknown {
  if (depth > 5 || fields === null || typeof fields !== "object") return fields;
  if (fields instanceof Error) return { name: fields.name, message: fields.message };
  if (Array.isArray(fields)) return fields.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = SECRET_FIELD.test(key) ? REDACTED : redact(value, depth + 1);
  }
  return out;
}

/** A logger writing JSON lines with a fixed `component` field. */
export class Logger {
  #minRank: number;
  #component: string;
  #write: (line: string) => void;

  constructor(
    component: string,
    level: LogLevel = "info",
    // deno-lint-ignore no-console
    write: (line: string) => void = (line) => console.log(line),
  ) {
    this.#component = component;
    this.#minRank = LEVEL_RANK[level];
    this.#write = write;
  }

  /** Logs at debug level. */
  debug(msg: string, fields?: Record<string, unknown>): void {
    this.#log("debug", msg, fields);
  }
  /** Logs at info level. */
  info(msg: string, fields?: Record<string, unknown>): void {
    this.#log("info", msg, fields);
  }
  /** Logs at warn level. */
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.#log("warn", msg, fields);
  }
  /** Logs at error level. */
  error(msg: string, fields?: Record<string, unknown>): void {
    this.#log("error", msg, fields);
  }

  #log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (LEVEL_RANK[level] < this.#minRank) return;
    const line = { ts: new Date().toISOString(), level, component: this.#component, msg };
    this.#write(JSON.stringify(fields ? { ...line, ...(redact(fields) as object) } : line));
  }
}
