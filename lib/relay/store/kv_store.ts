/**
 * The `ChatStore` engine on Deno KV (the embedded default: one relay, one local file).
 * Key layouts are in `_kv_keys.ts`; turn versions are KV versionstamps, checked with
 * `atomic().check()`, so every compare-and-set of the contract is one KV transaction.
 */
import type { ChatMessage, SiteProfile, WorkerStateEvent } from "../../protocol.ts";
import {
  chatKey,
  chatsPrefix,
  messageKey,
  messagesPrefix,
  openTurnKey,
  openTurnsPrefix,
  partialKey,
  seqCeilingKey,
  siteProfileKey,
  turnKey,
  workerKey,
  workersPrefix,
  workerStateKey,
} from "./_kv_keys.ts";
import {
  type ChatRecord,
  type ChatStore,
  type ChatWrites,
  fitsStoredValue,
  type PartialAnswer,
  type TurnRecord,
  type VersionedTurn,
  type WorkerRecord,
} from "./chat_store.ts";

/**
 * Sequence numbers are handed out from blocks reserved in KV (hi/lo), so the hot path of a
 * streamed chunk costs no write, and numbers after a restart are above any number issued
 * before it (the block is reserved before its first number is used).
 */
const SEQ_BLOCK = 1000;
/** Chats whose sequence block is kept in memory; evicting one is safe (it reloads from KV). */
const MAX_CACHED_SEQS = 50_000;

/** Deno KV's limits: mutations per commit (within 1000), bytes of mutations per commit. */
const MAX_MUTATIONS = 500;
const MAX_COMMIT_BYTES = 700 * 1024;

/** Opens the KV engine over an open `Deno.Kv`; the store owns it from here (and closes it). */
export function kvStore(kv: Deno.Kv): ChatStore {
  return new KvStore(kv);
}

class KvStore implements ChatStore {
  readonly #kv: Deno.Kv;
  #seqs = new Map<string, { next: number; ceiling: number }>();

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  async nextSeq(chatId: string): Promise<number> {
    let seq = this.#seqs.get(chatId);
    if (!seq) {
      const stored = await this.#kv.get<number>(seqCeilingKey(chatId));
      const ceiling = stored.value ?? 0;
      seq = { next: ceiling + 1, ceiling };
      if (this.#seqs.size >= MAX_CACHED_SEQS) {
        this.#seqs.delete(this.#seqs.keys().next().value!);
      }
      this.#seqs.set(chatId, seq);
    }
    if (seq.next > seq.ceiling) {
      const ceiling = seq.next + SEQ_BLOCK - 1;
      await this.#kv.set(seqCeilingKey(chatId), ceiling);
      seq.ceiling = ceiling;
    }
    return seq.next++;
  }

  nextSeqNow(chatId: string): number | null {
    const seq = this.#seqs.get(chatId);
    // Not loaded, or the block used up (maybe while `nextSeq()` reserves the next one).
    if (!seq || seq.next > seq.ceiling) return null;
    return seq.next++;
  }

  async getChat(chatId: string): Promise<ChatRecord | null> {
    return (await this.#kv.get<ChatRecord>(chatKey(chatId))).value;
  }

  async *listChats(): AsyncGenerator<ChatRecord> {
    for await (const entry of this.#kv.list<ChatRecord>({ prefix: chatsPrefix() })) {
      yield entry.value;
    }
  }

  async listMessages(chatId: string, afterSeq = 0, limit = 10_000): Promise<ChatMessage[]> {
    const out: ChatMessage[] = [];
    // Deno KV throws on a limit of 0 ("Limit must be a positive integer"); none is none.
    if (limit <= 0) return out;
    const iter = this.#kv.list<ChatMessage>({
      prefix: messagesPrefix(chatId),
      start: messageKey(chatId, afterSeq + 1),
    }, { limit });
    for await (const entry of iter) out.push(entry.value);
    return out;
  }

  async getMessage(chatId: string, seq: number): Promise<ChatMessage | null> {
    return (await this.#kv.get<ChatMessage>(messageKey(chatId, seq))).value;
  }

  async writeChat(writes: ChatWrites): Promise<boolean> {
    return (await withWrites(this.#kv.atomic(), writes).commit()).ok;
  }

  async deleteChat(chatId: string): Promise<void> {
    for await (const entry of this.#kv.list<ChatMessage>({ prefix: messagesPrefix(chatId) })) {
      await this.#kv.atomic().delete(entry.key).delete(turnKey(entry.value.id)).commit();
    }
    await this.#kv.atomic()
      .delete(chatKey(chatId))
      .delete(workerStateKey(chatId))
      .delete(partialKey(chatId))
      .delete(seqCeilingKey(chatId))
      .commit();
    this.#seqs.delete(chatId);
  }

  async getWorkerState(chatId: string): Promise<WorkerStateEvent | null> {
    return (await this.#kv.get<WorkerStateEvent>(workerStateKey(chatId))).value;
  }

  async setWorkerState(event: WorkerStateEvent): Promise<void> {
    await this.#kv.set(workerStateKey(event.chatId), event);
  }

  async getPartial(chatId: string): Promise<PartialAnswer | null> {
    return (await this.#kv.get<PartialAnswer>(partialKey(chatId))).value;
  }

  async setPartials(entries: { chatId: string; partial: PartialAnswer }[]): Promise<boolean[]> {
    const fits = entries.map((entry) => fitsStoredValue(entry.partial));
    // As few commits as KV's limits allow (1000 mutations, 800 KiB of them per commit): one
    // commit of many values costs a fraction of a commit each (docs/BENCHMARKS.md, issue 18).
    let batch: { chatId: string; partial: PartialAnswer }[] = [];
    let bytes = 0;
    for (const [i, entry] of entries.entries()) {
      if (!fits[i]) continue;
      // V8 serialises a string with any non-Latin-1 character at two bytes a character.
      const size = 2 * JSON.stringify(entry.partial).length + 128;
      if (batch.length === MAX_MUTATIONS || bytes + size > MAX_COMMIT_BYTES) {
        await this.#commitPartials(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(entry);
      bytes += size;
    }
    if (batch.length > 0) await this.#commitPartials(batch);
    return fits;
  }

  /**
   * Writes a batch of partials in one commit. No read of the stored ones first: one relay
   * alone owns this store and writes its batches in order (reading them back was about a
   * fifth of the relay's JavaScript at 1000 streaming chats, docs/BENCHMARKS.md).
   */
  async #commitPartials(batch: { chatId: string; partial: PartialAnswer }[]): Promise<void> {
    const op = this.#kv.atomic();
    for (const { chatId, partial } of batch) op.set(partialKey(chatId), partial);
    const { ok } = await op.commit();
    if (!ok) throw new Error("Cannot write the partial answers: the commit was refused");
  }

  async deletePartial(chatId: string): Promise<void> {
    await this.#kv.delete(partialKey(chatId));
  }

  async getSiteProfile(): Promise<SiteProfile | null> {
    return (await this.#kv.get<SiteProfile>(siteProfileKey())).value;
  }

  async setSiteProfile(profile: SiteProfile): Promise<void> {
    await this.#kv.set(siteProfileKey(), profile);
  }

  async listWorkers(): Promise<WorkerRecord[]> {
    const out: WorkerRecord[] = [];
    for await (const entry of this.#kv.list<WorkerRecord>({ prefix: workersPrefix() })) {
      out.push(entry.value);
    }
    return out;
  }

  async putWorker(record: WorkerRecord, expireInMs: number): Promise<void> {
    await this.#kv.set(workerKey(record.workerId), record, { expireIn: expireInMs });
  }

  async listOpenTurns(): Promise<VersionedTurn[]> {
    const out: VersionedTurn[] = [];
    // The index holds ids in arrival order; the turn record is the truth about its state.
    for await (const entry of this.#kv.list<string>({ prefix: openTurnsPrefix() })) {
      const found = await this.getTurn(entry.value);
      if (found && (found.turn.status === "pending" || found.turn.status === "leased")) {
        out.push(found);
      }
    }
    return out;
  }

  async getTurn(turnId: string): Promise<VersionedTurn | null> {
    const entry = await this.#kv.get<TurnRecord>(turnKey(turnId));
    return entry.value && entry.versionstamp
      ? { turn: entry.value, version: entry.versionstamp }
      : null;
  }

  async putVisitorMessage(
    chat: ChatRecord,
    message: ChatMessage,
    turn: TurnRecord,
  ): Promise<string | null> {
    const result = await this.#kv.atomic()
      .check({ key: turnKey(turn.id), versionstamp: null })
      .set(messageKey(message.chatId, message.seq), message)
      .set(chatKey(chat.id), chat)
      .set(turnKey(turn.id), turn)
      .set(openTurnKey(turn.createdAtMs, turn.id), turn.id)
      .commit();
    return result.ok ? result.versionstamp : null;
  }

  async updateTurn(next: TurnRecord, version: string): Promise<string | null> {
    const result = await this.#kv.atomic()
      .check({ key: turnKey(next.id), versionstamp: version })
      .set(turnKey(next.id), next)
      .commit();
    return result.ok ? result.versionstamp : null;
  }

  async closeTurn(next: TurnRecord, version: string, writes: ChatWrites): Promise<string | null> {
    // `next` keeps the open turn's `createdAtMs`, so it names the index entry to delete.
    const result = await withWrites(this.#kv.atomic(), writes)
      .check({ key: turnKey(next.id), versionstamp: version })
      .set(turnKey(next.id), next)
      .delete(openTurnKey(next.createdAtMs, next.id))
      .commit();
    return result.ok ? result.versionstamp : null;
  }

  async reopenTurn(next: TurnRecord, version: string, writes: ChatWrites): Promise<string | null> {
    const result = await withWrites(this.#kv.atomic(), writes)
      .check({ key: turnKey(next.id), versionstamp: version })
      .set(turnKey(next.id), next)
      .set(openTurnKey(next.createdAtMs, next.id), next.id)
      .commit();
    return result.ok ? result.versionstamp : null;
  }

  close(): Promise<void> {
    this.#kv.close();
    return Promise.resolve();
  }
}

/** Adds `writes` to an atomic operation. */
function withWrites(atomic: Deno.AtomicOperation, writes: ChatWrites): Deno.AtomicOperation {
  for (const message of writes.messages ?? []) {
    atomic.set(messageKey(message.chatId, message.seq), message);
  }
  if (writes.deletePartialOf !== undefined) atomic.delete(partialKey(writes.deletePartialOf));
  return atomic;
}
