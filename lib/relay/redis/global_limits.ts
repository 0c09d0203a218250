/**
 * The limits that protect the service, as async interfaces so an engine shared by several
 * relays can count them globally (issue 14). Both engines implement them: in one relay's
 * memory (`memory_limits.ts`, over `RateLimiter`, `FailureBudget`, `MemoryLockout`; sockets
 * are left to `SocketSlots`) and in Redis for all relays together (the `Redis*` classes here).
 * `relayLimits()` picks one set; the routes see only these interfaces.
 */

/** Fixed-window hits per key: `RateLimiter.hit()`, counted across relays. */
export interface GlobalRateLimit {
  /** Counts one hit for `key`; seconds to wait when over the limit, else 0. */
  hit(key: string): Promise<number>;
}

/** Wrong access codes from all clients together: `FailureBudget`, across relays. */
export interface GlobalFailureBudget {
  /** Counts one wrong code. */
  record(): Promise<void>;
  /** Wrong codes within the window. */
  failures(): Promise<number>;
  /** How long every code check waits now (the same curve as `FailureBudget.delayMs()`). */
  delayMs(): Promise<number>;
}

/** Per-client-key lockout after too many wrong codes (`AccessGuard`), across relays. */
export interface GlobalLockout {
  /** Milliseconds `key` stays locked out; 0 when it is not. */
  lockedForMs(key: string): Promise<number>;
  /** Counts a wrong code from `key`; returns how long it is now locked out (0: not yet). */
  recordFailure(key: string): Promise<number>;
}

/** One counted socket; release it when the socket closes (twice is harmless). */
export interface SocketLease {
  release(): Promise<void>;
}

/** Open sockets per client key across relays (`SocketSlots.maxPerKey`), approximately. */
export interface GlobalSocketCount {
  /** Counts one socket for `key`, or null when `key` is at its cap on all relays together. */
  acquire(key: string): Promise<SocketLease | null>;
  /** Sockets counted for `key` now. */
  count(key: string): Promise<number>;
}
