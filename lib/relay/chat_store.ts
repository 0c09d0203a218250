/**
 * The relay's durable chat store on Deno KV: chats, messages, per-chat sequence numbers,
 * the latest worker state and the partial answer. Turn records live in `turn_queue.ts`;
 * operations that must change a message and a turn together are committed there.
 */
import type { ChatMessage, ChunkKind, SiteProfile, WorkerStateEvent } from "../protocol.ts";
import {
  chatKey,
  chatsPrefix,
  messageKey,
  messagesPrefix,
  partialKey,
  seqCeilingKey,
  siteProfileKey,
  turnKey,
  workerStateKey,
} from "./_kv_keys.ts";

/** A chat as stored: who opened it and when it was last active. */
export interface ChatRecord {
  id: string;
  createdAt: string;
  lastActivityAt: string;
  clientIp: string;
  userAgent: string;
}

/** The answer being streamed for one turn, per chunk kind. */
export interface PartialAnswer {
  turnId: string | null;
  seq: number;
  texts: Record<ChunkKind, string>;
  done: boolean;
  updatedAt: string;
}

/**
 * Sequence numbers are handed out from blocks reserved in KV (hi/lo), so the hot path of a
 * streamed chunk costs no write, and numbers after a restart are above any number issued
 * before it (the block is reserved before its first number is used).
 */
const SEQ_BLOCK = 1000;
/** Deno KV rejects values over 64 KiB; leave room for the envelope. */
const MAX_KV_VALUE_BYTES = 60 * 1024;
/** Chats whose sequence block is kept in memory; evicting one is safe (it reloads from KV). */
const MAX_CACHED_SEQS = 50_000;

export class ChatStore {
  readonly kv: Deno.Kv;
  #seqs = new Map<string, { next: number; ceiling: number }>();

  constructor(kv: Deno.Kv) {
    this.kv = kv;
  }

  /** The next sequence number of `chatId`; callers serialise per chat. */
  async nextSeq(chatId: string): Promise<number> {
    let seq = this.#seqs.get(chatId);
    if (!seq) {
      const stored = await this.kv.get<number>(seqCeilingKey(chatId));
      const ceiling = stored.value ?? 0;
      seq = { next: ceiling + 1, ceiling };
      if (this.#seqs.size >= MAX_CACHED_SEQS) {
        this.#seqs.delete(this.#seqs.keys().next().value!);
      }
      this.#seqs.set(chatId, seq);
    }
    if (seq.next > seq.ceiling) {
      const ceiling = seq.next + SEQ_BLOCK - 1;
      await this.kv.set(seqCeilingKey(chatId), ceiling);
      seq.ceiling = ceiling;
    }
    return seq.next++;
  }

  /** The chat record, or null for a chat nobody has written to. */
  async getChat(chatId: string): Promise<ChatRecord | null> {
    return (await this.kv.get<ChatRecord>(chatKey(chatId))).value;
  }

  /** All chat records (admin export and retention). */
  async *listChats(): AsyncGenerator<ChatRecord> {
    for await (const entry of this.kv.list<ChatRecord>({ prefix: chatsPrefix() })) {
      yield entry.value;
    }
  }

  /** Messages of `chatId` with a sequence number above `afterSeq`, oldest first. */
  async listMessages(chatId: string, afterSeq = 0, limit = 10_000): Promise<ChatMessage[]> {
    const out: ChatMessage[] = [];
    // Deno KV throws on a limit of 0 ("Limit must be a positive integer"); none is none.
    if (limit <= 0) return out;
    const iter = this.kv.list<ChatMessage>({
      prefix: messagesPrefix(chatId),
      start: messageKey(chatId, afterSeq + 1),
    }, { limit });
    for await (const entry of iter) out.push(entry.value);
    return out;
  }

  /** A message by sequence number. */
  async getMessage(chatId: string, seq: number): Promise<ChatMessage | null> {
    return (await this.kv.get<ChatMessage>(messageKey(chatId, seq))).value;
  }

  /** The latest worker state of `chatId`, or null when none was ever set. */
  async getWorkerState(chatId: string): Promise<WorkerStateEvent | null> {
    return (await this.kv.get<WorkerStateEvent>(workerStateKey(chatId))).value;
  }

  /** Stores the latest worker state. */
  async setWorkerState(event: WorkerStateEvent): Promise<void> {
    await this.kv.set(workerStateKey(event.chatId), event);
  }

  /** The partial answer stored for `chatId`, if any. */
  async getPartial(chatId: string): Promise<PartialAnswer | null> {
    return (await this.kv.get<PartialAnswer>(partialKey(chatId))).value;
  }

  /** Stores a partial answer; one that cannot fit a KV value is skipped (resume then starts later). */
  async setPartial(chatId: string, partial: PartialAnswer): Promise<boolean> {
    const size = new TextEncoder().encode(JSON.stringify(partial)).byteLength;
    if (size > MAX_KV_VALUE_BYTES) return false;
    await this.kv.set(partialKey(chatId), partial);
    return true;
  }

  /** Deletes the stored partial answer. */
  async deletePartial(chatId: string): Promise<void> {
    await this.kv.delete(partialKey(chatId));
  }

  /** The site words a worker published last, or null before any. */
  async getSiteProfile(): Promise<SiteProfile | null> {
    return (await this.kv.get<SiteProfile>(siteProfileKey())).value;
  }

  /** Stores the site words. */
  async setSiteProfile(profile: SiteProfile): Promise<void> {
    await this.kv.set(siteProfileKey(), profile);
  }

  /** Deletes a chat and everything stored under it, its closed turns included (retention). */
  async deleteChat(chatId: string): Promise<void> {
    for await (const entry of this.kv.list<ChatMessage>({ prefix: messagesPrefix(chatId) })) {
      await this.kv.atomic().delete(entry.key).delete(turnKey(entry.value.id)).commit();
    }
    await this.kv.atomic()
      .delete(chatKey(chatId))
      .delete(workerStateKey(chatId))
      .delete(partialKey(chatId))
      .delete(seqCeilingKey(chatId))
      .commit();
    this.#seqs.delete(chatId);
  }

  /** Whether `value` serialises small enough to be one KV value. */
  static fits(value: unknown): boolean {
    return new TextEncoder().encode(JSON.stringify(value)).byteLength <= MAX_KV_VALUE_BYTES;
  }
}
