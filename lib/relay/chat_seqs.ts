/**
 * A chat's sequence numbers as this relay takes them from the store, with a memory of the
 * last one it took per chat. On several relays that memory says whether anyone else numbered
 * an event of the chat since (a number that does not follow this relay's last one), which is
 * when this relay's copies of the chat (its partial answer) must be read again.
 */
import type { SeqSource } from "./partial_answers.ts";
import type { ChatStore } from "./store/chat_store.ts";

/** Chats whose last number this relay remembers (past this the memory starts over). */
const MAX_REMEMBERED = 10_000;

export class ChatSeqs {
  readonly #store: ChatStore;
  readonly #shared: boolean;
  #last = new Map<string, number>();

  /** `shared`: other relays number this store's chats too. */
  constructor(store: ChatStore, shared: boolean) {
    this.#store = store;
    this.#shared = shared;
  }

  /** The chat's next number, and whether it follows the last one this relay took (`SeqSource`). */
  async next(chatId: string): ReturnType<SeqSource> {
    const seq = await this.#store.nextSeq(chatId);
    if (!this.#shared) return { seq, continuous: true };
    const last = this.#last.get(chatId);
    this.took(chatId, seq);
    return { seq, continuous: last === seq - 1 };
  }

  /**
   * The chat's next number without waiting, for a relay alone whose store has it in memory;
   * null otherwise (nothing taken). On a shared store always null: `next()` says whether the
   * number is continuous, which only the store's answer can.
   */
  nextNow(chatId: string): number | null {
    if (this.#shared) return null;
    return this.#store.nextSeqNow?.(chatId) ?? null;
  }

  /** The last number this relay took for `chatId` (several relays only), if it remembers one. */
  last(chatId: string): number | undefined {
    return this.#last.get(chatId);
  }

  /** Records that this relay took `seq` for `chatId` by other means (a chunk's one round trip). */
  took(chatId: string, seq: number): void {
    if (this.#last.size >= MAX_REMEMBERED) this.#last.clear();
    this.#last.set(chatId, seq);
  }
}
