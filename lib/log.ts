/**
 * Structured JSON logs, one line per event on stdout (journald keeps them as they are).
 * Fields whose names look secret are redacted, so a careless `log.info("x", {token})`
 * cannot leak a credential; message bodies are never passed here by the callers.
 * With `foldWindowMs`, a warning or error that repeats is written once per window and then
 * counted: "chunk not delivered … 384 more in the last 10 s" (issue 15: one line per token
 * during a relay outage buried the one line that said what was wrong).
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

/** Options of `Logger`. */
export interface LoggerOptions {
  /** Fold repeats of one warn/error message within this window into a count; 0: off. @default 0 */
  foldWindowMs?: number;
  /** The clock, for tests. @default Date.now */
  now?: () => number;
}

/** Distinct messages folded at once; past this, new messages are written unfolded. */
const MAX_FOLDED_MESSAGES = 256;

interface Fold {
  level: LogLevel;
  msg: string;
  startedAt: number;
  repeats: number;
  timer: ReturnType<typeof setTimeout> | null;
}

/** A logger writing JSON lines with a fixed `component` field. */
export class Logger {
  #minRank: number;
  #component: string;
  #write: (line: string) => void;
  #foldWindowMs: number;
  #now: () => number;
  #folds = new Map<string, Fold>();

  constructor(
    component: string,
    level: LogLevel = "info",
    // deno-lint-ignore no-console
    write: (line: string) => void = (line) => console.log(line),
    options: LoggerOptions = {},
  ) {
    this.#component = component;
    this.#minRank = LEVEL_RANK[level];
    this.#write = write;
    this.#foldWindowMs = options.foldWindowMs ?? 0;
    this.#now = options.now ?? Date.now;
  }

  /** Writes the counts of folded repeats now (at shutdown, and in tests). */
  flush(): void {
    for (const fold of [...this.#folds.values()]) this.#closeFold(fold);
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

  /** Logs at `level` without folding: for events that are rare by design (a status change). */
  unfolded(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    this.#log(level, msg, fields, false);
  }

  #log(level: LogLevel, msg: string, fields?: Record<string, unknown>, fold = true): void {
    if (LEVEL_RANK[level] < this.#minRank) return;
    if (fold && this.#folded(level, msg)) return;
    const line = { ts: new Date().toISOString(), level, component: this.#component, msg };
    this.#write(JSON.stringify(fields ? { ...line, ...(redact(fields) as object) } : line));
  }

  /** Counts `msg` instead of writing it when it was written already in this window. */
  #folded(level: LogLevel, msg: string): boolean {
    if (this.#foldWindowMs <= 0 || LEVEL_RANK[level] < LEVEL_RANK.warn) return false;
    const key = `${level} ${msg}`;
    const fold = this.#folds.get(key);
    const now = this.#now();
    if (fold && now - fold.startedAt < this.#foldWindowMs) {
      fold.repeats++;
      if (fold.timer === null) {
        const timer = setTimeout(
          () => this.#closeFold(fold),
          fold.startedAt + this.#foldWindowMs - now,
        );
        // A pending count must not keep a finished process alive.
        Deno.unrefTimer(timer);
        fold.timer = timer;
      }
      return true;
    }
    if (fold) this.#closeFold(fold);
    if (this.#folds.size < MAX_FOLDED_MESSAGES) {
      this.#folds.set(key, { level, msg, startedAt: now, repeats: 0, timer: null });
    }
    return false;
  }

  #closeFold(fold: Fold): void {
    if (fold.timer !== null) clearTimeout(fold.timer);
    this.#folds.delete(`${fold.level} ${fold.msg}`);
    if (fold.repeats === 0) return;
    const seconds = Math.round(this.#foldWindowMs / 1000);
    this.#write(JSON.stringify({
      ts: new Date().toISOString(),
      level: fold.level,
      component: this.#component,
      msg: `${fold.msg} … ${fold.repeats} more in the last ${seconds} s`,
      repeats: fold.repeats,
    }));
  }
}
