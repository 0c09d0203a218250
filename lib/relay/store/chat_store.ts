/**
 * The relay's store, as an interface every engine implements (Deno KV in `kv_store.ts`;
 * Redis for several relays, issue 14). The rest of the relay sees only this: plain data in
 * and out, no engine types, no keys. Writes that must change together are single methods,
 * so each engine makes them atomic its own way (a KV `atomic()`, a Redis MULTI or script).
 *
 * Turns carry an opaque `version` that changes on every write of the turn; methods that
 * change a turn take the version the caller judged it by and write nothing when it is no
 * longer current (compare-and-set). That is what makes claims race-free and replies land
 * once: of two writers holding the same version, exactly one succeeds.
 *
 * `runStoreConformance()` in `store_conformance.ts` is the executable form of this contract.
 */
import type {
  ChatMessage,
  ChunkKind,
  ComponentReport,
  SiteProfile,
  TurnFailure,
  WorkerStateEvent,
} from "../../protocol.ts";

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

/** `failed`: closed by a worker's failure report; a visitor retry re-opens it. */
export type TurnStatus = "pending" | "leased" | "done" | "cancelled" | "failed";

/** A turn as stored. `id` is the id of the visitor message it answers. */
export interface TurnRecord {
  id: string;
  chatId: string;
  messageId: string;
  createdAtMs: number;
  status: TurnStatus;
  attempt: number;
  leaseId: string | null;
  workerId: string | null;
  leaseExpiresAtMs: number;
  cancelRequested: boolean;
  /** Sequence number of the reply message once answered (or of an interrupted reply). */
  replySeq: number | null;
  /** Sequence number of the visitor message (turns stored before issue 16 lack it). */
  messageSeq?: number;
  /** Why the turn failed, while it is `failed`. */
  failure?: TurnFailure;
  /** The client key of the visitor who asked (`clientKey()`), for the open-turn caps. */
  clientKey?: string;
}

/** A turn with the engine's version of it (opaque; changes on every write of the turn). */
export interface VersionedTurn {
  turn: TurnRecord;
  version: string;
}

/** A worker's last heartbeat and component report. */
export interface WorkerRecord {
  workerId: string;
  lastSeenAtMs: number;
  report: { agentApi: ComponentReport; llm: ComponentReport } | null;
  reportedAtMs: number;
}

/** Messages and a partial-answer deletion committed in the same transaction as a turn change. */
export interface ChatWrites {
  /** Messages to store, new or replacing the one with the same `chatId` and `seq`. */
  messages?: ChatMessage[];
  /** The chat whose partial answer is deleted. */
  deletePartialOf?: string;
}

/**
 * The largest stored value (a message, a partial answer) every engine must accept, in bytes
 * of its JSON: Deno KV's 64 KiB value limit less room for the envelope. The relay refuses
 * larger replies (`reply_too_large`), so an engine with a higher limit changes nothing.
 */
export const MAX_STORED_VALUE_BYTES = 60 * 1024;

/** Whether `value` serialises small enough to be one stored value. */
export function fitsStoredValue(value: unknown): boolean {
  return new TextEncoder().encode(JSON.stringify(value)).byteLength <= MAX_STORED_VALUE_BYTES;
}

/**
 * Everything the relay keeps durably. Every method is async and may reject when the engine
 * cannot read or write (a full disk, a lost connection); such a rejection means nothing of
 * that call was written. A method that resolves has committed its writes durably.
 */
export interface ChatStore {
  /**
   * True when several relays may use this store at once (Redis): what a relay keeps in
   * memory of data other relays write (worker heartbeats) must be read from it again.
   * Absent or false: this relay is the store's only writer (Deno KV).
   */
  readonly shared?: boolean;

  // Sequence numbers ------------------------------------------------------------------------

  /**
   * The next sequence number of `chatId`: strictly above every number this store handed
   * out for the chat before, also across a close and reopen, and across relays sharing the
   * store. Gaps are allowed (numbers reserved in blocks). Callers serialise calls per chat.
   */
  nextSeq(chatId: string): Promise<number>;

  /**
   * `nextSeq()` without waiting, when the store can answer from memory (a number of a block
   * it already reserved); null when it cannot (then nothing was taken: call `nextSeq()`).
   * Absent: never. Same rules and serialisation as `nextSeq()`.
   */
  nextSeqNow?(chatId: string): number | null;

  // Chats and messages ----------------------------------------------------------------------

  /** The chat record, or null for a chat nobody has written to. */
  getChat(chatId: string): Promise<ChatRecord | null>;
  /** Every chat record, in no particular order (admin export, retention). */
  listChats(): AsyncIterable<ChatRecord>;
  /** Messages of `chatId` with `seq` above `afterSeq`, oldest first, at most `limit`. */
  listMessages(chatId: string, afterSeq?: number, limit?: number): Promise<ChatMessage[]>;
  /** The message of `chatId` with sequence number `seq`, or null. */
  getMessage(chatId: string, seq: number): Promise<ChatMessage | null>;
  /**
   * Commits `writes` in one transaction (a reply that answers no turn); false when the
   * engine refused the transaction as a whole (nothing written, the caller may retry).
   */
  writeChat(writes: ChatWrites): Promise<boolean>;
  /**
   * Deletes a chat and everything stored under it: record, messages, the turns of its
   * visitor messages, worker state, partial answer and sequence counter (retention). The
   * caller makes sure the chat has no open turn.
   */
  deleteChat(chatId: string): Promise<void>;

  // Per-chat state --------------------------------------------------------------------------

  /** The latest worker state of `chatId`, or null when none was ever set. */
  getWorkerState(chatId: string): Promise<WorkerStateEvent | null>;
  /** Stores the latest worker state of `event.chatId`, replacing the previous one. */
  setWorkerState(event: WorkerStateEvent): Promise<void>;
  /** The partial answer stored for `chatId`, or null. */
  getPartial(chatId: string): Promise<PartialAnswer | null>;
  /**
   * Stores the partial answers of several chats (the write-through batch), each replacing the
   * chat's previous one; on a `shared` store not when that has a higher `seq` (a relay's late
   * write never undoes a newer one written by another relay; one relay alone writes its
   * batches one after another). Answers, per entry, false (and nothing written for it) when it
   * does not fit `MAX_STORED_VALUE_BYTES`, else true.
   */
  setPartials(entries: { chatId: string; partial: PartialAnswer }[]): Promise<boolean[]>;
  /** Deletes the stored partial answer (none is fine). */
  deletePartial(chatId: string): Promise<void>;

  // Site words and workers ------------------------------------------------------------------

  /** The site words a worker published last, or null before any. */
  getSiteProfile(): Promise<SiteProfile | null>;
  /** Stores the site words. */
  setSiteProfile(profile: SiteProfile): Promise<void>;
  /** Every worker record not yet expired. */
  listWorkers(): Promise<WorkerRecord[]>;
  /** Stores a worker record, forgotten `expireInMs` after this write. */
  putWorker(record: WorkerRecord, expireInMs: number): Promise<void>;

  // Turns (the work queue) ------------------------------------------------------------------

  /**
   * The open turns (pending or leased) in arrival order: by `createdAtMs`, then `id`. A turn
   * is open from `putVisitorMessage()` or `reopenTurn()` until `closeTurn()`.
   */
  listOpenTurns(): Promise<VersionedTurn[]>;
  /** A turn, open or closed, with its current version; null for an unknown id. */
  getTurn(turnId: string): Promise<VersionedTurn | null>;
  /**
   * Atomically stores a visitor message, its chat record and its new open turn; returns the
   * turn's version, or null (and nothing written) when a turn with that id already exists.
   */
  putVisitorMessage(
    chat: ChatRecord,
    message: ChatMessage,
    turn: TurnRecord,
  ): Promise<string | null>;
  /**
   * Replaces an open turn if its version is still `version` (a claim, renewal, release or
   * cancel flag); returns the new version, or null (nothing written) when it changed.
   */
  updateTurn(next: TurnRecord, version: string): Promise<string | null>;
  /**
   * Closes an open turn (answered, stopped or failed) if its version is still `version`:
   * stores `next`, takes it out of the open turns and commits `writes` (the reply, the
   * visitor message with its failure, the partial-answer deletion) in the same transaction.
   * Returns the new version, or null (nothing written) when the turn changed: so a reply
   * is stored once however many workers post it.
   */
  closeTurn(next: TurnRecord, version: string, writes: ChatWrites): Promise<string | null>;
  /**
   * Re-opens a closed turn (a visitor's retry) if its version is still `version`: stores
   * `next` (open, with its new `createdAtMs`), puts it back among the open turns and commits
   * `writes`, atomically. Returns the new version, or null (nothing written).
   */
  reopenTurn(next: TurnRecord, version: string, writes: ChatWrites): Promise<string | null>;

  // Lifecycle -------------------------------------------------------------------------------

  /** Releases the engine's resources; no call may follow. */
  close(): Promise<void>;
}
