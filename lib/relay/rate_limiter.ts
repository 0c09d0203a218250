/** Fixed-window request counters per key (a client key, a chat id), kept in memory. */

/** Keys remembered at most: ended windows are pruned first, then the oldest dropped. */
const MAX_KEYS = 100_000;

export class RateLimiter {
  #windowMs: number;
  #max: number;
  #windows = new Map<string, { startMs: number; count: number }>();

  constructor(windowMs: number, max: number) {
    this.#windowMs = windowMs;
    this.#max = max;
  }

  /** Counts one hit for `key`; returns seconds to wait when over the limit, else 0. */
  hit(key: string, nowMs = Date.now()): number {
    let window = this.#windows.get(key);
    if (!window || nowMs - window.startMs >= this.#windowMs) {
      if (this.#windows.size >= MAX_KEYS) this.prune(nowMs);
      window = { startMs: nowMs, count: 0 };
      this.#windows.delete(key);
      this.#windows.set(key, window);
    }
    window.count++;
    if (window.count <= this.#max) return 0;
    return Math.max(1, Math.ceil((window.startMs + this.#windowMs - nowMs) / 1000));
  }

  /** Forgets windows that have ended; if still full, the oldest (memory stays bounded). */
  prune(nowMs = Date.now()): void {
    for (const [key, window] of this.#windows) {
      if (nowMs - window.startMs >= this.#windowMs) this.#windows.delete(key);
    }
    for (const key of this.#windows.keys()) {
      if (this.#windows.size < MAX_KEYS) break;
      this.#windows.delete(key);
    }
  }
}
