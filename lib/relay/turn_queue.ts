/**
 * The work queue (SPEC §3 "Work distribution"). Every visitor message opens a turn; a
 * worker claims the oldest claimable turn with a lease and renews it while it works; a
 * lease that is not renewed expires and the turn is offered again. A chat's turns are
 * answered one at a time, in order. Turns live in the store; this class keeps the open
 * ones in memory (loaded at start) and writes every change as a compare-and-set on the
 * turn's version (`ChatStore`), so of two racing writers one wins. When several relays share
 * the store, each tells the others of every turn it changed (`onChange`) and they `refresh()`
 * that turn; a write judged on a copy that is stale anyway loses its compare-and-set.
 */
import { newId } from "../id.ts";
import type { ChatMessage, Turn, TurnFailure } from "../protocol.ts";
import { RelayError } from "./errors.ts";
import type {
  ChatRecord,
  ChatStore,
  ChatWrites,
  TurnRecord,
  VersionedTurn,
} from "./store/chat_store.ts";

export type { TurnRecord, TurnStatus } from "./store/chat_store.ts";

/** An open turn with the store's version of it (what its next write is checked against). */
type OpenTurn = VersionedTurn;

/** A turn as the worker sees it. */
export function toWireTurn(turn: TurnRecord): Turn {
  return {
    id: turn.id,
    chatId: turn.chatId,
    messageId: turn.messageId,
    leaseId: turn.leaseId ?? "",
    leaseExpiresAt: new Date(turn.leaseExpiresAtMs).toISOString(),
    attempt: turn.attempt,
    cancelRequested: turn.cancelRequested,
  };
}

export class TurnQueue {
  readonly #store: ChatStore;
  readonly #leaseMs: number;
  /** Open turns in arrival order (Map keeps insertion order; load and enqueue append). */
  #open = new Map<string, OpenTurn>();
  /** Expired leases already announced, so a dead worker's turn is announced once. */
  #announcedExpiry = new Set<string>();

  readonly #onChange: (turnId: string) => void;

  /** `onChange` hears of every turn this queue wrote (other relays read it again). */
  constructor(store: ChatStore, leaseMs: number, onChange: (turnId: string) => void = () => {}) {
    this.#store = store;
    this.#leaseMs = leaseMs;
    this.#onChange = onChange;
  }

  /** Loads the open turns from the store (at start, and when relays lost touch); their number. */
  async load(): Promise<number> {
    const open = new Map<string, OpenTurn>();
    for (const entry of await this.#store.listOpenTurns()) {
      if (isOpen(entry.turn)) open.set(entry.turn.id, entry);
    }
    this.#open = open;
    return open.size;
  }

  /** Reads turn `turnId` again from the store (another relay changed it). */
  async refresh(turnId: string, nowMs = Date.now()): Promise<void> {
    const stored = await this.#store.getTurn(turnId);
    if (!stored || !isOpen(stored.turn)) {
      this.#open.delete(turnId);
      this.#announcedExpiry.delete(turnId);
      return;
    }
    const open = this.#open.get(turnId);
    if (open) {
      open.turn = stored.turn;
      open.version = stored.version;
    } else {
      this.#insert(stored);
    }
    if (stored.turn.leaseExpiresAtMs > nowMs) this.#announcedExpiry.delete(turnId);
  }

  /** Open turns of `chatId`, oldest first. */
  openTurnsOf(chatId: string): TurnRecord[] {
    return [...this.#open.values()].filter((t) => t.turn.chatId === chatId).map((t) => t.turn);
  }

  /** The turn a chat is being answered (or waiting) for: its oldest open turn. */
  currentTurn(chatId: string): TurnRecord | null {
    for (const { turn } of this.#open.values()) if (turn.chatId === chatId) return turn;
    return null;
  }

  /** Number of open turns asked from client key `key`. */
  openTurnsFromClient(key: string): number {
    let n = 0;
    for (const { turn } of this.#open.values()) if (turn.clientKey === key) n++;
    return n;
  }

  /** Number of open turns in total. */
  get size(): number {
    return this.#open.size;
  }

  /** A turn by id: open turns from memory, finished ones from the store. */
  async get(turnId: string): Promise<TurnRecord | null> {
    const open = this.#open.get(turnId);
    if (open) return open.turn;
    return (await this.#store.getTurn(turnId))?.turn ?? null;
  }

  /** An open turn by id from memory, or null (closed, unknown or not loaded: see `get()`). */
  openTurn(turnId: string): TurnRecord | null {
    return this.#open.get(turnId)?.turn ?? null;
  }

  /** A new pending turn for a stored visitor message (not yet written). */
  static newTurn(
    chatId: string,
    messageId: string,
    nowMs: number,
    clientKey?: string,
  ): TurnRecord {
    return {
      ...(clientKey === undefined ? {} : { clientKey }),
      id: messageId,
      chatId,
      messageId,
      createdAtMs: nowMs,
      status: "pending",
      attempt: 0,
      leaseId: null,
      workerId: null,
      leaseExpiresAtMs: 0,
      cancelRequested: false,
      replySeq: null,
    };
  }

  /** Stores a visitor message, its chat record and its new open turn, together. */
  async enqueue(turn: TurnRecord, chat: ChatRecord, message: ChatMessage): Promise<void> {
    const version = await this.#store.putVisitorMessage(chat, message, turn);
    if (!version) throw new RelayError("conflict", "The message was stored twice");
    this.#insert({ turn, version });
    this.#onChange(turn.id);
  }

  /**
   * Chats with a turn a worker may claim now: the chat's oldest open turn is pending, or
   * leased with an expired lease.
   */
  claimableChats(nowMs = Date.now()): string[] {
    return this.#candidates(nowMs).map((t) => t.turn.chatId);
  }

  /** Leases the oldest claimable turn (of `chatId`, if given) to `workerId`, or returns null. */
  async claim(workerId: string, chatId?: string, nowMs = Date.now()): Promise<TurnRecord | null> {
    for (const candidate of this.#candidates(nowMs)) {
      if (chatId && candidate.turn.chatId !== chatId) continue;
      // Another claim may have won this turn while we awaited a commit: re-check the live
      // turn, so the version we check belongs to the state we judged claimable.
      if (!this.#open.has(candidate.turn.id) || !isClaimable(candidate.turn, nowMs)) continue;
      const next: TurnRecord = {
        ...candidate.turn,
        status: "leased",
        attempt: candidate.turn.attempt + 1,
        leaseId: newId(),
        workerId,
        leaseExpiresAtMs: nowMs + this.#leaseMs,
      };
      if (await this.#write(candidate, next)) {
        this.#announcedExpiry.delete(next.id);
        return next;
      }
    }
    return null;
  }

  /** Extends a lease. Throws 409 `lease_lost` when the turn was answered or re-leased. */
  async renew(turnId: string, leaseId: string, nowMs = Date.now()): Promise<TurnRecord> {
    const open = this.#requireLease(turnId, leaseId);
    const next = { ...open.turn, leaseExpiresAtMs: nowMs + this.#leaseMs };
    if (!(await this.#write(open, next))) throw leaseLost(turnId);
    this.#announcedExpiry.delete(turnId);
    return next;
  }

  /** Gives a leased turn back to the queue (the worker is shutting down, say). */
  async release(turnId: string, leaseId: string): Promise<TurnRecord> {
    const open = this.#requireLease(turnId, leaseId);
    const next: TurnRecord = {
      ...open.turn,
      status: "pending",
      leaseId: null,
      workerId: null,
      leaseExpiresAtMs: 0,
    };
    if (!(await this.#write(open, next))) throw leaseLost(turnId);
    return next;
  }

  /** Marks a leased turn as cancelled by the visitor; the worker learns it on renew or push. */
  async requestCancel(turnId: string): Promise<TurnRecord | null> {
    const open = this.#open.get(turnId);
    if (!open) return null;
    const next = { ...open.turn, cancelRequested: true };
    return (await this.#write(open, next)) ? next : null;
  }

  /**
   * Closes an open turn as `done` (answered; `replySeq` set), `cancelled` or `failed` (with
   * its `failure`), committing `writes` (the caller's) in the same transaction.
   * Returns null when the turn was already closed or changed under us.
   */
  async close(
    turnId: string,
    status: "done" | "cancelled" | "failed",
    replySeq: number | null,
    writes: ChatWrites,
    failure?: TurnFailure,
  ): Promise<TurnRecord | null> {
    const open = this.#open.get(turnId);
    if (!open) return null;
    const next: TurnRecord = { ...open.turn, status, replySeq, leaseId: null };
    if (failure) next.failure = failure;
    if (!(await this.#store.closeTurn(next, open.version, writes))) {
      // Closed or changed meanwhile (by another relay, or by this relay's own write whose
      // answer Redis lost): take the stored turn, so the caller sees what it now is.
      await this.refresh(turnId);
      return null;
    }
    this.#open.delete(turnId);
    this.#announcedExpiry.delete(turnId);
    this.#onChange(turnId);
    return next;
  }

  /**
   * Re-opens a `failed` turn as pending at the back of the queue (a visitor's retry),
   * committing `writes` with it. Returns null when the turn is not failed (any more).
   */
  async reopen(
    turnId: string,
    writes: ChatWrites,
    nowMs = Date.now(),
    clientKey?: string,
  ): Promise<TurnRecord | null> {
    const stored = await this.#store.getTurn(turnId);
    if (stored?.turn.status !== "failed" || this.#open.has(turnId)) return null;
    const { failure: _failure, ...rest } = stored.turn;
    // A new arrival time keeps the memory order and the store's (after a restart) alike.
    const next: TurnRecord = {
      ...rest,
      status: "pending",
      createdAtMs: nowMs,
      leaseId: null,
      workerId: null,
      leaseExpiresAtMs: 0,
      cancelRequested: false,
      replySeq: null,
      // Whoever retries owns the open turn now (the open-turn caps count it for them).
      ...(clientKey === undefined ? {} : { clientKey }),
    };
    const version = await this.#store.reopenTurn(next, stored.version, writes);
    if (!version) return null;
    this.#insert({ turn: next, version });
    this.#onChange(turnId);
    return next;
  }

  /** Leased turns whose lease ran out since the last call (each reported once). */
  takeExpired(nowMs = Date.now()): TurnRecord[] {
    const out: TurnRecord[] = [];
    for (const { turn } of this.#open.values()) {
      if (
        turn.status === "leased" && turn.leaseExpiresAtMs <= nowMs &&
        !this.#announcedExpiry.has(turn.id)
      ) {
        this.#announcedExpiry.add(turn.id);
        out.push(turn);
      }
    }
    return out;
  }

  /**
   * Queue positions of waiting chats: for each chat whose oldest open turn is not being
   * worked on, the number of such chats ahead of it.
   */
  positions(nowMs = Date.now()): Map<string, number> {
    const out = new Map<string, number>();
    const seen = new Set<string>();
    for (const { turn } of this.#open.values()) {
      if (seen.has(turn.chatId)) continue;
      seen.add(turn.chatId);
      if (turn.cancelRequested) continue;
      if (turn.status === "leased" && turn.leaseExpiresAtMs > nowMs) continue;
      out.set(turn.chatId, out.size);
    }
    return out;
  }

  #candidates(nowMs: number): OpenTurn[] {
    const out: OpenTurn[] = [];
    const seen = new Set<string>();
    for (const open of this.#open.values()) {
      if (seen.has(open.turn.chatId)) continue;
      seen.add(open.turn.chatId);
      if (isClaimable(open.turn, nowMs)) out.push(open);
    }
    return out;
  }

  #requireLease(turnId: string, leaseId: string): OpenTurn {
    const open = this.#open.get(turnId);
    if (!open || open.turn.leaseId !== leaseId) throw leaseLost(turnId);
    return open;
  }

  async #write(open: OpenTurn, next: TurnRecord): Promise<boolean> {
    const version = await this.#store.updateTurn(next, open.version);
    if (!version) {
      // Changed by another relay: take the current turn, so the next judgement is fair.
      await this.refresh(next.id);
      return false;
    }
    // Replace in place so the Map keeps arrival order.
    open.turn = next;
    open.version = version;
    this.#onChange(next.id);
    return true;
  }

  /** Adds an open turn in arrival order (by `createdAtMs`, then id, as the store lists them). */
  #insert(entry: OpenTurn): void {
    let last: OpenTurn | undefined;
    for (const open of this.#open.values()) last = open;
    this.#open.set(entry.turn.id, entry);
    if (!last || arrival(last.turn, entry.turn) <= 0) return;
    // Arrived from another relay out of order: rare, and the queue is small (MAX_OPEN_TURNS).
    this.#open = new Map([...this.#open].sort(([, a], [, b]) => arrival(a.turn, b.turn)));
  }
}

function isClaimable(turn: TurnRecord, nowMs: number): boolean {
  // A turn the visitor stopped is finished as stopped (by the lease sweep, or on release),
  // never offered to another worker.
  if (turn.cancelRequested) return false;
  return turn.status === "pending" || (turn.status === "leased" && turn.leaseExpiresAtMs <= nowMs);
}

function arrival(a: TurnRecord, b: TurnRecord): number {
  return a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function isOpen(turn: TurnRecord): boolean {
  return turn.status === "pending" || turn.status === "leased";
}

function leaseLost(turnId: string): RelayError {
  return new RelayError(
    "lease_lost",
    `The lease on turn "${turnId}" is no longer yours: it was answered, released or expired and claimed again`,
  );
}
