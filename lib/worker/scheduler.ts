/**
 * Decides when to claim work: chat activity pushed over the socket (or found by polling
 * `/api/chats/open` while the socket is down) queues a hint, and up to
 * `MAX_CONCURRENT_CHATS` turns run at once. The hint queue is bounded; a dropped hint is
 * not lost work, because the turn stays open in the relay and the next poll finds it.
 */
import type { Logger } from "../log.ts";
import type { Turn } from "../protocol.ts";
import type { WorkerConfig } from "./config.ts";
import type { RelayClient } from "./relay_client.ts";
import type { TurnOutcome } from "./turn_runner.ts";

/** While connected, poll this many times less often, as a safety net for missed pushes. */
const CONNECTED_POLL_FACTOR = 6;

export interface SchedulerDeps {
  relay: Pick<RelayClient, "claim" | "openChats" | "connected">;
  run: (turn: Turn) => Promise<TurnOutcome>;
  config: WorkerConfig;
  log: Logger;
}

export class Scheduler {
  #deps: SchedulerDeps;
  #hints = new Set<string>();
  #running = new Set<Promise<unknown>>();
  #claiming = false;
  #stopped = false;
  #pollTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
  }

  /** Turns running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Starts polling; pushes come in through `hint`. */
  start(): void {
    this.#schedulePoll(0);
  }

  /** A chat has (or may have) a turn waiting. */
  hint(chatId: string | null): void {
    if (this.#stopped) return;
    const key = chatId ?? "";
    if (!this.#hints.has(key) && this.#hints.size >= this.#deps.config.maxChatQueueSize) {
      this.#deps.log.warn("hint queue full; the next poll will find the chat", { chatId });
      return;
    }
    this.#hints.add(key);
    void this.#pump();
  }

  /** Stops claiming; resolves when running turns have finished (the caller aborts them). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#pollTimer !== null) clearTimeout(this.#pollTimer);
    this.#hints.clear();
    await Promise.allSettled([...this.#running]);
  }

  async #pump(): Promise<void> {
    if (this.#claiming) return;
    this.#claiming = true;
    try {
      while (
        !this.#stopped && this.#hints.size > 0 &&
        this.#running.size < this.#deps.config.maxConcurrentChats
      ) {
        const key = this.#hints.values().next().value!;
        this.#hints.delete(key);
        let turn: Turn | null = null;
        try {
          turn = await this.#deps.relay.claim(key || undefined);
        } catch (error) {
          this.#deps.log.warn("claim failed", { chatId: key || null, error });
          continue;
        }
        if (!turn) continue;
        const work = this.#deps.run(turn).finally(() => {
          this.#running.delete(work);
          // A finished turn frees a slot: look for more work (the chat may have another turn).
          this.hint(turn!.chatId);
          this.hint(null);
        });
        this.#running.add(work);
      }
    } finally {
      this.#claiming = false;
    }
  }

  #schedulePoll(delayMs: number): void {
    if (this.#stopped) return;
    this.#pollTimer = setTimeout(async () => {
      try {
        if (this.#running.size < this.#deps.config.maxConcurrentChats) {
          for (const chatId of await this.#deps.relay.openChats()) this.hint(chatId);
        }
      } catch (error) {
        this.#deps.log.warn("polling open chats failed", { error });
      }
      const interval = this.#deps.config.pollIntervalMs;
      this.#schedulePoll(this.#deps.relay.connected ? interval * CONNECTED_POLL_FACTOR : interval);
    }, delayMs);
  }
}
