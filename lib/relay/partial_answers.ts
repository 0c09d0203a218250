/**
 * The answers being streamed, one per chat: each chunk is placed at its offset in the text
 * of its kind, kept in memory for the hot path and written through to the store every 250 ms,
 * so a visitor who reconnects after a relay restart still gets what was streamed so far (as a
 * snapshot, one event per kind).
 *
 * The write-through is one batch for every chat that changed in the interval (`setPartials`),
 * off the chats' lanes: one KV commit of 300 partial answers costs about a tenth of the CPU of
 * 300 commits, and a chat's chunks no longer queue behind a commit (issue 18). A reply deletes
 * the partial in its own transaction; it first waits for a batch in flight that holds the chat
 * (`settle()`), so a stale copy is never written after the deletion.
 *
 * When several relays share the store (issue 14) the worker's chunks of one answer may reach
 * any of them, so a relay's copy is only trusted while nobody else numbered an event of the
 * chat since (`SeqSource` says whether this relay's number follows its last one): otherwise
 * the answer is read again — the stored copy (up to 250 ms old) plus the chunks published
 * after it (`chunksAfter`, from the event bus's history). A snapshot is always read afresh.
 */
import type { AgentChunkRequest, AssistantChunkEvent, ChunkKind } from "../protocol.ts";
import type { Fanout } from "./fanout.ts";
import { RelayError } from "./errors.ts";
import type { ChatStore, PartialAnswer } from "./store/chat_store.ts";
import type { Logger } from "../log.ts";

const PERSIST_EVERY_MS = 250;
/** A streamed text of one kind may not grow past this (characters). */
const MAX_PARTIAL_CHARS = 512 * 1024;
/** The order of a snapshot's events: what the page shows above the answer comes first. */
const SNAPSHOT_KINDS = ["reasoning", "tool", "answer"] as const;
/** Chats remembered as having no stored partial; past this the memory is simply dropped. */
const MAX_KNOWN_ABSENT = 10_000;

/** The second `isoNow()` last formatted, and its text up to the milliseconds. */
let isoSecond = -1;
let isoPrefix = "";

/**
 * `new Date(ms).toISOString()`, formatting the date once per second: every chunk is stamped,
 * and `toISOString()` took 0.7-1.2 µs of the chunk's path against 0.06-0.24 µs for this
 * (issue 18). For the years 0000-9999, as `toISOString()` itself without a sign.
 */
export function isoNow(ms: number = Date.now()): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const milli = ms - second * 1000;
  return isoPrefix + (milli < 10 ? "00" : milli < 100 ? "0" : "") + milli + "Z";
}

/** `partial` with a chunk event applied at its offset (a chunk of another turn starts anew). */
function applyEvent(partial: PartialAnswer | null, event: AssistantChunkEvent): PartialAnswer {
  if (!partial || partial.turnId !== event.turnId) {
    partial = {
      turnId: event.turnId,
      seq: 0,
      texts: emptyTexts(),
      done: false,
      updatedAt: event.emittedAt,
    };
  }
  const text = partial.texts[event.kind];
  if (event.offset <= text.length) {
    partial.texts[event.kind] = text.slice(0, event.offset) + event.content;
  }
  partial.seq = event.seq;
  partial.done = event.done;
  partial.updatedAt = event.emittedAt;
  return partial;
}

/**
 * The next sequence number of a chat, and whether it directly follows the last one this
 * relay took for it (always true for a relay alone): if not, another relay emitted between.
 */
export type SeqSource = () => Promise<{ seq: number; continuous: boolean }>;

function emptyTexts(): Record<ChunkKind, string> {
  return { answer: "", reasoning: "", tool: "" };
}

/** A copy to write: the live one's texts change while the batch is written. */
function copyOf(partial: PartialAnswer): PartialAnswer {
  return { ...partial, texts: { ...partial.texts } };
}

export class PartialAnswers {
  #store: ChatStore;
  #log: Logger;
  #fanout: Fanout;
  #live = new Map<string, PartialAnswer>();
  /** Chats whose partial changed since the last batch. */
  #dirty = new Set<string>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** The batch being written, and its chats (a reply for one of them waits for it). */
  #inFlight: { chats: Set<string>; done: Promise<void> } | null = null;
  /**
   * Chats whose stored copy this relay deleted (a claim starts a turn from nothing), so the
   * first chunk of the turn need not read the store to learn there is none: that read was on the
   * path of the answer's first token (docs/BENCHMARKS.md).
   */
  #absent = new Set<string>();

  /** `fanout` knows whether relays share the store, and the chunks they published. */
  constructor(store: ChatStore, log: Logger, fanout: Fanout) {
    this.#store = store;
    this.#log = log;
    this.#fanout = fanout;
  }

  /** The chat's partial answer from memory, or from the store after a restart. */
  async #get(chatId: string): Promise<PartialAnswer | null> {
    const live = this.#live.get(chatId);
    if (live) return live;
    if (this.#absent.has(chatId)) return null;
    return await this.#load(chatId);
  }

  /**
   * Reads the chat's partial answer from the store and, when relays share it, adds the chunks
   * published after the stored copy; kept in memory as this relay's copy.
   */
  async #load(chatId: string): Promise<PartialAnswer | null> {
    let partial = await this.#store.getPartial(chatId);
    const stored = partial;
    if (this.#fanout.shared) {
      for (const event of await this.#fanout.chunksAfter(chatId, stored?.seq ?? 0) ?? []) {
        partial = applyEvent(partial, event);
      }
    }
    this.forget(chatId);
    if (partial) this.#live.set(chatId, partial);
    return partial;
  }

  /**
   * Places a chunk of `turnId`'s answer at its offset (the end when it names none), numbers
   * it with `nextSeq()` and schedules the write-through; returns the event to fan out. A
   * chunk of another turn starts the partial afresh. Throws 409 `chunk_gap` for an offset
   * past the text so far, 413 `answer_too_long` past the cap. The caller is in the lane.
   */
  async append(
    chatId: string,
    turnId: string | null,
    chunk: AgentChunkRequest,
    nextSeq: SeqSource,
  ): Promise<AssistantChunkEvent> {
    // Numbered first: whether the number follows this relay's last one says whether its copy
    // is current. A refused chunk leaves a gap in the numbers, which is allowed.
    const { seq, continuous } = await nextSeq();
    if (!continuous) {
      this.forget(chatId);
      this.#absent.delete(chatId);
    }
    const { event, keep } = await this.prepare(chatId, turnId, chunk, seq);
    keep();
    return event;
  }

  /**
   * The chunk placed on this relay's copy as event number `seq`, not kept yet: `keep()` keeps
   * it (once the event went out) and schedules the write-through. Throws as `append()` does.
   */
  async prepare(
    chatId: string,
    turnId: string | null,
    chunk: AgentChunkRequest,
    seq: number,
  ): Promise<{ event: AssistantChunkEvent; keep: () => void }> {
    return this.#place(chatId, turnId, chunk, seq, await this.#get(chatId));
  }

  /**
   * `append()` without waiting, for a relay alone, when this relay knows the chat's partial
   * answer without reading the store and `nextSeq()` numbers it at once (not null). Undefined
   * when it cannot: nothing was numbered or kept (call `append()`). Throws as `append()` does.
   * The caller is in the lane, or the lane is idle.
   */
  appendNow(
    chatId: string,
    turnId: string | null,
    chunk: AgentChunkRequest,
    nextSeq: () => number | null,
  ): AssistantChunkEvent | undefined {
    // Several relays: whether this copy is current takes the store's word (`SeqSource`).
    if (this.#fanout.shared) return undefined;
    const current = this.#live.get(chatId) ?? (this.#absent.has(chatId) ? null : undefined);
    if (current === undefined) return undefined;
    const seq = nextSeq();
    if (seq === null) return undefined;
    const { event, keep } = this.#place(chatId, turnId, chunk, seq, current);
    keep();
    return event;
  }

  /** `prepare()` on the copy `current` (null: none). */
  #place(
    chatId: string,
    turnId: string | null,
    chunk: AgentChunkRequest,
    seq: number,
    current: PartialAnswer | null,
  ): { event: AssistantChunkEvent; keep: () => void } {
    const fresh = !current || current.turnId !== turnId;
    const kind = chunk.kind ?? "answer";
    const before = fresh ? "" : current.texts[kind];
    const offset = chunk.offset ?? before.length;
    if (offset > before.length) {
      throw new RelayError(
        "chunk_gap",
        `The chunk starts at ${offset} but the relay has ${before.length} characters; resend from an earlier offset`,
      );
    }
    const text = before.slice(0, offset) + chunk.content;
    if (text.length > MAX_PARTIAL_CHARS) {
      throw new RelayError("answer_too_long", "The streamed answer is too long");
    }
    const now = isoNow();
    const done = chunk.done ?? false;
    const event: AssistantChunkEvent = {
      type: "assistantChunk",
      chatId,
      content: chunk.content,
      done,
      emittedAt: now,
      seq,
      kind,
      offset,
      turnId,
    };
    const keep = () => {
      const partial = fresh ? this.#reset(chatId, turnId) : current;
      this.#live.set(chatId, partial);
      partial.texts[kind] = text;
      partial.done = done;
      partial.seq = seq;
      partial.updatedAt = now;
      this.#changed(chatId);
    };
    return { event, keep };
  }

  /**
   * The partial answer as replay events (one per kind with text, from offset 0) when it is
   * newer than `since` and belongs to `currentTurnId()` (or to no turn, a legacy stream).
   */
  async snapshot(
    chatId: string,
    since: number,
    currentTurnId: () => string | null,
  ): Promise<AssistantChunkEvent[]> {
    // Another relay may be streaming this answer: its chunks are in the store and the bus.
    const partial = this.#fanout.shared ? await this.#load(chatId) : await this.#get(chatId);
    if (!partial || partial.seq <= since) return [];
    if (partial.turnId && currentTurnId() !== partial.turnId) return [];
    const events: AssistantChunkEvent[] = [];
    for (const kind of SNAPSHOT_KINDS) {
      if (!partial.texts[kind] && !(kind === "answer" && partial.done)) continue;
      events.push({
        type: "assistantChunk",
        chatId,
        content: partial.texts[kind],
        done: partial.done,
        emittedAt: partial.updatedAt,
        seq: partial.seq,
        kind,
        offset: 0,
        turnId: partial.turnId,
      });
    }
    return events;
  }

  /** The text streamed so far for the answer of `turnId`, or "" (a stopped turn's reply). */
  async answerOf(chatId: string, turnId: string): Promise<string> {
    const partial = this.#fanout.shared ? await this.#load(chatId) : await this.#get(chatId);
    return partial?.turnId === turnId ? partial.texts.answer : "";
  }

  /** Starts an empty partial answer for `turnId`. */
  #reset(chatId: string, turnId: string | null): PartialAnswer {
    this.forget(chatId);
    this.#absent.delete(chatId);
    const partial: PartialAnswer = {
      turnId,
      seq: 0,
      texts: emptyTexts(),
      done: false,
      updatedAt: new Date().toISOString(),
    };
    this.#live.set(chatId, partial);
    return partial;
  }

  /** Forgets the chat's partial in memory (its stored copy goes in the caller's transaction). */
  forget(chatId: string): void {
    this.#live.delete(chatId);
    this.#dirty.delete(chatId);
  }

  /**
   * Waits until no write of the chat's partial is in flight and none will follow: call before
   * a transaction that deletes the stored copy.
   */
  async settle(chatId: string): Promise<void> {
    this.#dirty.delete(chatId);
    const inFlight = this.#inFlight;
    if (inFlight?.chats.has(chatId)) await inFlight.done;
  }

  /** Forgets the chat's partial in memory and in the store. */
  async drop(chatId: string): Promise<void> {
    this.forget(chatId);
    this.#absent.delete(chatId);
    await this.settle(chatId);
    await this.#store.deletePartial(chatId);
    if (this.#absent.size >= MAX_KNOWN_ABSENT) this.#absent.clear();
    if (!this.#live.has(chatId)) this.#absent.add(chatId);
  }

  /** Marks a chat's partial for the next batch, which starts within `PERSIST_EVERY_MS`. */
  #changed(chatId: string): void {
    this.#dirty.add(chatId);
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      this.#write().catch((error) => this.#log.error("partial answers write failed", { error }));
    }, PERSIST_EVERY_MS);
  }

  /** Writes every changed partial in one batch, after the batch in flight. */
  async #write(): Promise<void> {
    while (this.#inFlight) await this.#inFlight.done.catch(() => {});
    const batch: { chatId: string; partial: PartialAnswer }[] = [];
    for (const chatId of this.#dirty) {
      const partial = this.#live.get(chatId);
      if (partial) batch.push({ chatId, partial: copyOf(partial) });
    }
    this.#dirty.clear();
    if (batch.length === 0) return;
    const done = this.#store.setPartials(batch).then(() => {});
    const inFlight = { chats: new Set(batch.map((entry) => entry.chatId)), done };
    this.#inFlight = inFlight;
    try {
      await done;
    } finally {
      if (this.#inFlight === inFlight) this.#inFlight = null;
    }
  }

  /** Writes every pending partial now (shutdown). */
  async flush(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#write();
  }
}
