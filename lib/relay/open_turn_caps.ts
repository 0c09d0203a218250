/**
 * Caps on open turns (unanswered visitor messages) per client key and in total, so one
 * code holder cannot fill the queue (a newcomer would read "3000 chats ahead of you") or
 * the store. A place is reserved synchronously before the message is stored, so many
 * requests racing on different chats cannot all slip under the cap together.
 */
import { RelayError } from "./errors.ts";

/** What a visitor is told to wait when its own turns are at the cap (seconds). */
const CLIENT_RETRY_SECONDS = 15;
/** What a visitor is told to wait when the whole queue is full (seconds). */
const QUEUE_RETRY_SECONDS = 30;

/**
 * What the chat service asks of the caps: a place for one more open turn from a client key,
 * or a 429. `OpenTurnCaps` answers for one relay; `RedisOpenTurnCaps` for all relays on one
 * Redis (issue 14). Call the release once the turn is stored or has failed.
 */
export interface TurnCaps {
  reserve(key: string): (() => void) | Promise<() => Promise<void>>;
}

/** Where the open turns are counted (the turn queue). */
export interface OpenTurnCounts {
  total(): number;
  ofClient(key: string): number;
}

export class OpenTurnCaps implements TurnCaps {
  #perClient: number;
  #total: number;
  #counts: OpenTurnCounts;
  #reserved = new Map<string, number>();
  #reservedTotal = 0;

  constructor(limits: { perClient: number; total: number }, counts: OpenTurnCounts) {
    this.#perClient = limits.perClient;
    this.#total = limits.total;
    this.#counts = counts;
  }

  /**
   * Reserves a place for one more open turn from `key`, or throws 429 `queue_full` /
   * `too_many_open_turns` with `Retry-After`. Call the returned function once the turn is
   * stored (it then counts itself) or has failed.
   */
  reserve(key: string): () => void {
    const mine = this.#reserved.get(key) ?? 0;
    if (this.#counts.ofClient(key) + mine >= this.#perClient) {
      throw new RelayError(
        "too_many_open_turns",
        "Terra has not answered the messages already sent from your network yet; wait for those replies first.",
        { retryAfterSeconds: CLIENT_RETRY_SECONDS },
      );
    }
    if (this.#counts.total() + this.#reservedTotal >= this.#total) {
      throw new RelayError("queue_full", "Terra has too many questions waiting right now.", {
        retryAfterSeconds: QUEUE_RETRY_SECONDS,
      });
    }
    this.#reserved.set(key, mine + 1);
    this.#reservedTotal++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#reservedTotal--;
      const left = (this.#reserved.get(key) ?? 1) - 1;
      if (left > 0) this.#reserved.set(key, left);
      else this.#reserved.delete(key);
    };
  }
}
