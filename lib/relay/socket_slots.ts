/**
 * Visitor socket slots, reserved at the handshake before the upgrade: a client key (IPv4
 * address or IPv6 /64) holds at most `maxPerKey` sockets from the handshake on, opens at
 * most `maxOpensPerMinute` a minute, and at most `maxPending` sockets relay-wide may be
 * upgraded but not yet open. A socket that is counted only once it is attached lets one
 * client hold thousands of half-open ones (issue 11); one that may reconnect at once after
 * each close lets it churn hundreds of handshakes, replays and buffers a second.
 */
import { RelayError } from "./errors.ts";

/** How long a reserved slot waits for its socket to open before it is given back. */
const OPEN_TIMEOUT_MS = 10_000;
const MINUTE_MS = 60_000;

/** One reserved slot; `opened()` ends its pending time, `release()` frees it (idempotent). */
export interface SocketSlot {
  opened(): void;
  release(): void;
}

export class SocketSlots {
  #perKey = new Map<string, number>();
  #pending = 0;
  /** Sockets opened per key in the current minute (a fixed window; cleared as a whole). */
  #opens = new Map<string, number>();
  #windowEndsAt = 0;

  constructor(
    readonly maxPerKey: number,
    readonly maxPending: number,
    readonly maxOpensPerMinute: number = 4 * maxPerKey,
    readonly openTimeoutMs: number = OPEN_TIMEOUT_MS,
    readonly now: () => number = Date.now,
  ) {}

  /** Sockets pending now (upgraded, not yet open). */
  get pending(): number {
    return this.#pending;
  }

  /** Sockets counted for `key` now. */
  count(key: string): number {
    return this.#perKey.get(key) ?? 0;
  }

  /**
   * Reserves a slot for `key`, or throws 429 `too_many_sockets` (this key is at its cap, or
   * opened its sockets for this minute) or 503 `sockets_busy` (too many handshakes in flight
   * relay-wide). `onTimeout` runs when the
   * socket has not opened in time; the slot is released then.
   */
  reserve(key: string, onTimeout: () => void): SocketSlot {
    const held = this.count(key);
    if (held >= this.maxPerKey) {
      throw new RelayError(
        "too_many_sockets",
        "Too many open sockets from this address; close a tab and try again",
        { retryAfterSeconds: 5 },
      );
    }
    const now = this.now();
    if (now >= this.#windowEndsAt) {
      this.#opens.clear();
      this.#windowEndsAt = now + MINUTE_MS;
    }
    const opens = this.#opens.get(key) ?? 0;
    if (opens >= this.maxOpensPerMinute) {
      throw new RelayError(
        "too_many_sockets",
        "Too many new connections from this address; try again in a minute",
        { retryAfterSeconds: (this.#windowEndsAt - now) / 1000 },
      );
    }
    if (this.#pending >= this.maxPending) {
      throw new RelayError("sockets_busy", "Too many connections opening; try again", {
        retryAfterSeconds: 1,
      });
    }
    this.#perKey.set(key, held + 1);
    this.#opens.set(key, opens + 1);
    this.#pending++;
    let pending = true;
    let released = false;
    const endPending = () => {
      if (!pending) return;
      pending = false;
      this.#pending--;
      clearTimeout(timer);
    };
    const release = () => {
      if (released) return;
      released = true;
      endPending();
      const left = this.count(key) - 1;
      if (left <= 0) this.#perKey.delete(key);
      else this.#perKey.set(key, left);
    };
    const timer = setTimeout(() => {
      release();
      onTimeout();
    }, this.openTimeoutMs);
    return { opened: endPending, release };
  }
}
