/**
 * The answers being streamed, one per chat: kept in memory for the hot path and written
 * through to the store at most every 250 ms, so a visitor who reconnects after a relay restart
 * still gets what was streamed so far.
 */
import type { ChunkKind } from "../protocol.ts";
import type { ChatLanes } from "./chat_lanes.ts";
import type { ChatStore, PartialAnswer } from "./store/chat_store.ts";
import type { Logger } from "../log.ts";

const PERSIST_EVERY_MS = 250;
/** Chats remembered as having no stored partial; past this the memory is simply dropped. */
const MAX_KNOWN_ABSENT = 10_000;

/** A partial answer with its pending write-through. */
export interface LivePartial extends PartialAnswer {
  timer: ReturnType<typeof setTimeout> | null;
}

function emptyTexts(): Record<ChunkKind, string> {
  return { answer: "", reasoning: "", tool: "" };
}

function toStored(partial: LivePartial): PartialAnswer {
  const { timer: _timer, ...stored } = partial;
  return stored;
}

export class PartialAnswers {
  #store: ChatStore;
  #lanes: ChatLanes;
  #log: Logger;
  #live = new Map<string, LivePartial>();
  /**
   * Chats whose stored copy this relay deleted (a claim starts a turn from nothing), so the
   * first chunk of the turn need not read the store to learn there is none: that read was on the
   * path of the answer's first token (docs/BENCHMARKS.md).
   */
  #absent = new Set<string>();

  constructor(store: ChatStore, lanes: ChatLanes, log: Logger) {
    this.#store = store;
    this.#lanes = lanes;
    this.#log = log;
  }

  /** The chat's partial answer from memory, or from the store after a restart. */
  async get(chatId: string): Promise<LivePartial | null> {
    const live = this.#live.get(chatId);
    if (live) return live;
    if (this.#absent.has(chatId)) return null;
    const stored = await this.#store.getPartial(chatId);
    if (!stored) return null;
    const partial = { ...stored, timer: null };
    this.#live.set(chatId, partial);
    return partial;
  }

  /** Starts an empty partial answer for `turnId`. */
  reset(chatId: string, turnId: string | null): LivePartial {
    this.forget(chatId);
    this.#absent.delete(chatId);
    const partial: LivePartial = {
      turnId,
      seq: 0,
      texts: emptyTexts(),
      done: false,
      updatedAt: new Date().toISOString(),
      timer: null,
    };
    this.#live.set(chatId, partial);
    return partial;
  }

  /** Forgets the chat's partial in memory (its stored copy goes in the caller's transaction). */
  forget(chatId: string): void {
    const partial = this.#live.get(chatId);
    if (partial?.timer) clearTimeout(partial.timer);
    this.#live.delete(chatId);
  }

  /** Forgets the chat's partial in memory and in the store. */
  async drop(chatId: string): Promise<void> {
    this.forget(chatId);
    this.#absent.delete(chatId);
    await this.#store.deletePartial(chatId);
    if (this.#absent.size >= MAX_KNOWN_ABSENT) this.#absent.clear();
    if (!this.#live.has(chatId)) this.#absent.add(chatId);
  }

  /** Schedules the write-through of a changed partial. */
  changed(chatId: string, partial: LivePartial): void {
    if (partial.timer !== null) return;
    partial.timer = setTimeout(() => {
      partial.timer = null;
      // In the chat's lane, so a write cannot land after the reply deleted the partial.
      this.#lanes.run(chatId, async () => {
        if (this.#live.get(chatId) === partial) {
          await this.#store.setPartial(chatId, toStored(partial));
        }
      }).catch((error) => this.#log.error("partial answer write failed", { chatId, error }));
    }, PERSIST_EVERY_MS);
  }

  /** Writes every pending partial now (shutdown). */
  async flush(): Promise<void> {
    for (const [chatId, partial] of this.#live) {
      if (partial.timer === null) continue;
      clearTimeout(partial.timer);
      partial.timer = null;
      await this.#store.setPartial(chatId, toStored(partial));
    }
  }
}
