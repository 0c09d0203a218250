/**
 * Visitor socket slots, reserved at the handshake before the upgrade: a client key (IPv4
 * address or IPv6 /64) holds at most `perKey` sockets from the handshake on, and at most
 * `pending` sockets relay-wide may be upgraded but not yet open. A socket that is counted
 * only once it is attached lets one client hold thousands of half-open ones (issue 11).
 */
import { RelayError } from "./errors.ts";

/** How long a reserved slot waits for its socket to open before it is given back. */
const OPEN_TIMEOUT_MS = 10_000;

/** One reserved slot; `opened()` ends its pending time, `release()` frees it (idempotent). */
export interface SocketSlot {
  opened(): void;
  release(): void;
}

export class SocketSlots {
  #perKey = new Map<string, number>();
  #pending = 0;

  constructor(
    readonly maxPerKey: number,
    readonly maxPending: number,
    readonly openTimeoutMs: number = OPEN_TIMEOUT_MS,
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
   * Reserves a slot for `key`, or throws 429 `too_many_sockets` (this key is at its cap) or
   * 503 `sockets_busy` (too many handshakes in flight relay-wide). `onTimeout` runs when the
   * socket has not opened in time; the slot is released then.
   */
  reserve(key: string, onTimeout: () => void): SocketSlot {
    const held = this.count(key);
    if (held >= this.maxPerKey) {
      throw new RelayError(
        429,
        "too_many_sockets",
        "Too many open sockets from this address; close a tab and try again",
        { retryAfterSeconds: 5 },
      );
    }
    if (this.#pending >= this.maxPending) {
      throw new RelayError(503, "sockets_busy", "Too many connections opening; try again", {
        retryAfterSeconds: 1,
      });
    }
    this.#perKey.set(key, held + 1);
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
