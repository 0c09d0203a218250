/**
 * The work queue (SPEC §3 "Work distribution"). Every visitor message opens a turn; a
 * worker claims the oldest claimable turn with a lease and renews it while it works; a
 * lease that is not renewed expires and the turn is offered again. A chat's turns are
 * answered one at a time, in order. Turn records live in Deno KV; this class keeps the
 * open ones in memory (loaded at start) and writes every change with `atomic().check()`.
 */
import { newId } from "../id.ts";
import type { Turn, TurnFailure } from "../protocol.ts";
import { openTurnKey, openTurnsPrefix, turnKey } from "./_kv_keys.ts";
import { RelayError } from "./errors.ts";

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

interface OpenTurn {
  record: TurnRecord;
  versionstamp: string;
}

/** A turn as the worker sees it. */
export function toWireTurn(record: TurnRecord): Turn {
  return {
    id: record.id,
    chatId: record.chatId,
    messageId: record.messageId,
    leaseId: record.leaseId ?? "",
    leaseExpiresAt: new Date(record.leaseExpiresAtMs).toISOString(),
    attempt: record.attempt,
    cancelRequested: record.cancelRequested,
  };
}

export class TurnQueue {
  readonly #kv: Deno.Kv;
  readonly #leaseMs: number;
  /** Open turns in arrival order (Map keeps insertion order; load and enqueue append). */
  #open = new Map<string, OpenTurn>();
  /** Expired leases already announced, so a dead worker's turn is announced once. */
  #announcedExpiry = new Set<string>();

  constructor(kv: Deno.Kv, leaseMs: number) {
    this.#kv = kv;
    this.#leaseMs = leaseMs;
  }

  /** Loads the open turns from KV; call once at start. */
  async load(): Promise<number> {
    for await (const entry of this.#kv.list<string>({ prefix: openTurnsPrefix() })) {
      const turn = await this.#kv.get<TurnRecord>(turnKey(entry.value));
      if (turn.value && turn.versionstamp && isOpen(turn.value)) {
        this.#open.set(turn.value.id, { record: turn.value, versionstamp: turn.versionstamp });
      }
    }
    return this.#open.size;
  }

  /** Open turns of `chatId`, oldest first. */
  openTurnsOf(chatId: string): TurnRecord[] {
    return [...this.#open.values()].filter((t) => t.record.chatId === chatId).map((t) => t.record);
  }

  /** The turn a chat is being answered (or waiting) for: its oldest open turn. */
  currentTurn(chatId: string): TurnRecord | null {
    for (const { record } of this.#open.values()) if (record.chatId === chatId) return record;
    return null;
  }

  /** Number of open turns asked from client key `key`. */
  openTurnsFromClient(key: string): number {
    let n = 0;
    for (const { record } of this.#open.values()) if (record.clientKey === key) n++;
    return n;
  }

  /** Number of open turns in total. */
  get size(): number {
    return this.#open.size;
  }

  /** A turn by id: open turns from memory, finished ones from KV. */
  async get(turnId: string): Promise<TurnRecord | null> {
    const open = this.#open.get(turnId);
    if (open) return open.record;
    return (await this.#kv.get<TurnRecord>(turnKey(turnId))).value;
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

  /** Commits `atomic` (the caller's writes) together with a new open turn. */
  async enqueue(turn: TurnRecord, atomic: Deno.AtomicOperation): Promise<void> {
    const result = await atomic
      .check({ key: turnKey(turn.id), versionstamp: null })
      .set(turnKey(turn.id), turn)
      .set(openTurnKey(turn.createdAtMs, turn.id), turn.id)
      .commit();
    if (!result.ok) throw new RelayError(409, "conflict", "The message was stored twice");
    this.#open.set(turn.id, { record: turn, versionstamp: result.versionstamp });
  }

  /**
   * Chats with a turn a worker may claim now: the chat's oldest open turn is pending, or
   * leased with an expired lease.
   */
  claimableChats(nowMs = Date.now()): string[] {
    return this.#candidates(nowMs).map((t) => t.record.chatId);
  }

  /** Leases the oldest claimable turn (of `chatId`, if given) to `workerId`, or returns null. */
  async claim(workerId: string, chatId?: string, nowMs = Date.now()): Promise<TurnRecord | null> {
    for (const candidate of this.#candidates(nowMs)) {
      if (chatId && candidate.record.chatId !== chatId) continue;
      // Another claim may have won this turn while we awaited a commit: re-check the live
      // record, so the versionstamp we check belongs to the state we judged claimable.
      if (!this.#open.has(candidate.record.id) || !isClaimable(candidate.record, nowMs)) continue;
      const next: TurnRecord = {
        ...candidate.record,
        status: "leased",
        attempt: candidate.record.attempt + 1,
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
    const next = { ...open.record, leaseExpiresAtMs: nowMs + this.#leaseMs };
    if (!(await this.#write(open, next))) throw leaseLost(turnId);
    this.#announcedExpiry.delete(turnId);
    return next;
  }

  /** Gives a leased turn back to the queue (the worker is shutting down, say). */
  async release(turnId: string, leaseId: string): Promise<TurnRecord> {
    const open = this.#requireLease(turnId, leaseId);
    const next: TurnRecord = {
      ...open.record,
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
    const next = { ...open.record, cancelRequested: true };
    return (await this.#write(open, next)) ? next : null;
  }

  /**
   * Closes an open turn as `done` (answered; `replySeq` set), `cancelled` or `failed` (with
   * its `failure`), committing `atomic` (the caller's writes) in the same transaction.
   * Returns null when the turn was already closed or changed under us.
   */
  async close(
    turnId: string,
    status: "done" | "cancelled" | "failed",
    replySeq: number | null,
    atomic: Deno.AtomicOperation,
    failure?: TurnFailure,
  ): Promise<TurnRecord | null> {
    const open = this.#open.get(turnId);
    if (!open) return null;
    const next: TurnRecord = { ...open.record, status, replySeq, leaseId: null };
    if (failure) next.failure = failure;
    const result = await atomic
      .check({ key: turnKey(turnId), versionstamp: open.versionstamp })
      .set(turnKey(turnId), next)
      .delete(openTurnKey(open.record.createdAtMs, turnId))
      .commit();
    if (!result.ok) return null;
    this.#open.delete(turnId);
    this.#announcedExpiry.delete(turnId);
    return next;
  }

  /**
   * Re-opens a `failed` turn as pending at the back of the queue (a visitor's retry),
   * committing `atomic` with it. Returns null when the turn is not failed (any more).
   */
  async reopen(
    turnId: string,
    atomic: Deno.AtomicOperation,
    nowMs = Date.now(),
    clientKey?: string,
  ): Promise<TurnRecord | null> {
    const stored = await this.#kv.get<TurnRecord>(turnKey(turnId));
    if (stored.value?.status !== "failed" || this.#open.has(turnId)) return null;
    const { failure: _failure, ...rest } = stored.value;
    // A new arrival time keeps the memory order and the KV index (after a restart) alike.
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
    const result = await atomic
      .check({ key: turnKey(turnId), versionstamp: stored.versionstamp })
      .set(turnKey(turnId), next)
      .set(openTurnKey(nowMs, turnId), turnId)
      .commit();
    if (!result.ok) return null;
    this.#open.set(turnId, { record: next, versionstamp: result.versionstamp });
    return next;
  }

  /** Leased turns whose lease ran out since the last call (each reported once). */
  takeExpired(nowMs = Date.now()): TurnRecord[] {
    const out: TurnRecord[] = [];
    for (const { record } of this.#open.values()) {
      if (
        record.status === "leased" && record.leaseExpiresAtMs <= nowMs &&
        !this.#announcedExpiry.has(record.id)
      ) {
        this.#announcedExpiry.add(record.id);
        out.push(record);
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
    for (const { record } of this.#open.values()) {
      if (seen.has(record.chatId)) continue;
      seen.add(record.chatId);
      if (record.cancelRequested) continue;
      if (record.status === "leased" && record.leaseExpiresAtMs > nowMs) continue;
      out.set(record.chatId, out.size);
    }
    return out;
  }

  #candidates(nowMs: number): OpenTurn[] {
    const out: OpenTurn[] = [];
    const seen = new Set<string>();
    for (const open of this.#open.values()) {
      if (seen.has(open.record.chatId)) continue;
      seen.add(open.record.chatId);
      if (isClaimable(open.record, nowMs)) out.push(open);
    }
    return out;
  }

  #requireLease(turnId: string, leaseId: string): OpenTurn {
    const open = this.#open.get(turnId);
    if (!open || open.record.leaseId !== leaseId) throw leaseLost(turnId);
    return open;
  }

  async #write(open: OpenTurn, next: TurnRecord): Promise<boolean> {
    const result = await this.#kv.atomic()
      .check({ key: turnKey(next.id), versionstamp: open.versionstamp })
      .set(turnKey(next.id), next)
      .commit();
    if (!result.ok) return false;
    // Replace in place so the Map keeps arrival order.
    open.record = next;
    open.versionstamp = result.versionstamp;
    return true;
  }
}

function isClaimable(turn: TurnRecord, nowMs: number): boolean {
  // A turn the visitor stopped is finished as stopped (by the lease sweep, or on release),
  // never offered to another worker.
  if (turn.cancelRequested) return false;
  return turn.status === "pending" || (turn.status === "leased" && turn.leaseExpiresAtMs <= nowMs);
}

function isOpen(turn: TurnRecord): boolean {
  return turn.status === "pending" || turn.status === "leased";
}

function leaseLost(turnId: string): RelayError {
  return new RelayError(
    409,
    "lease_lost",
    `The lease on turn "${turnId}" is no longer yours: it was answered, released or expired and claimed again`,
  );
}
