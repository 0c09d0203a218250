/**
 * A chat's lane across relays (issue 14): everything that numbers and emits a chat's events
 * runs in the chat's lane (`chat_lanes.ts`), and on several relays the lane also holds this
 * lock, so the event numbered 7 is stored and published before anyone takes number 8 — on
 * any relay. Without it, relay A could take 7 for a visitor message while relay B takes 8
 * for a chunk and publishes it first, and the bus (whose history only grows) would refuse 7.
 *
 * The lock is a key with a random token and a time to live (`SET NX PX`), released by a
 * script that deletes it only while it still holds the caller's token. A relay that dies
 * holding it blocks the chat for at most `ttlMs`. A task that outlives `ttlMs` (Redis itself
 * stalled) loses the guarantee; the bus then refuses the later-published event, which a
 * reconnecting visitor still gets from the store.
 */
import { backoffDelay } from "../../backoff.ts";
import { delay } from "../../delay.ts";
import { RelayError } from "../errors.ts";
import type { RedisConnection } from "./redis_connection.ts";

/** Serialises a chat's event-emitting work across relays. */
export interface ChatLock {
  /** Waits until this relay holds `chatId`'s lock; call the result to release it. */
  acquire(chatId: string): Promise<() => Promise<void>>;
}

/** KEYS: the lock. ARGV: the holder's token. Deletes the lock only for its holder. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** The key of a chat's lock (the chat's hash tag: its Cluster slot, beside its keys). */
export function chatLockKey(prefix: string, chatId: string): string {
  return `${prefix}chat:{${chatId}}:lock`;
}

/** How the lock behaves. */
export interface RedisChatLockOptions {
  /** Put before every key (the store's). @default "terrarium:" */
  prefix?: string;
  /** A holder that vanished blocks the chat this long at most (ms). @default 5_000 */
  ttlMs?: number;
  /** A waiter gives up after this long with 503 `store_busy` (ms). @default 10_000 */
  waitMs?: number;
}

/** The per-chat lock of all relays on one Redis. */
export class RedisChatLock implements ChatLock {
  readonly #redis: RedisConnection;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #waitMs: number;

  constructor(redis: RedisConnection, options: RedisChatLockOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? "terrarium:";
    this.#ttlMs = options.ttlMs ?? 5_000;
    this.#waitMs = options.waitMs ?? 10_000;
  }

  async acquire(chatId: string): Promise<() => Promise<void>> {
    const key = chatLockKey(this.#prefix, chatId);
    const token = crypto.randomUUID();
    const deadline = Date.now() + this.#waitMs;
    for (let attempt = 1;; attempt++) {
      const taken = await this.#redis.command<string | null>(
        ["SET", key, token, "NX", "PX", String(this.#ttlMs)],
      );
      if (taken !== null) break;
      if (Date.now() >= deadline) {
        throw new RelayError("store_busy", "Another relay holds this chat; retry", {
          retryAfterSeconds: 1,
        });
      }
      // Held by another relay for one short task, as a rule: poll soon, then back off.
      await delay(Math.max(1, backoffDelay(attempt, { baseMs: 2, capMs: 50 })));
    }
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      await this.#redis.eval(RELEASE, [key], [token]);
    };
  }
}
