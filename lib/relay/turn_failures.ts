/**
 * Failed turns (issue 16): errors are not answers. A worker's failure report closes the
 * turn as `failed` and keeps `{code, error, failedAt}` on the visitor message (the operator
 * keeps the code, the page shows the sentence with a Retry), stores text streamed before the
 * failure as a Terra message marked `interrupted`, and tells the chat with an `error` state
 * naming the turn. The error sentence is never stored as Terra's words. The visitor's Retry
 * clears the failure and puts the turn back in the queue.
 */
import { newId } from "../id.ts";
import type { Logger } from "../log.ts";
import type {
  ChatMessage,
  TurnFailRequest,
  TurnFailure,
  WorkerStateEvent,
  WorkerStateName,
} from "../protocol.ts";
import type { ChatLanes } from "./chat_lanes.ts";
import { RelayError, unknownTurn } from "./errors.ts";
import type { Metrics } from "./metrics.ts";
import type { PartialAnswers } from "./partial_answers.ts";
import type { Fanout } from "./fanout.ts";
import type { TurnQueue } from "./turn_queue.ts";
import {
  type ChatStore,
  type ChatWrites,
  fitsStoredValue,
  type TurnRecord,
} from "./store/chat_store.ts";

/** What failures work with: the chat service's parts and its in-lane state setter. */
export interface TurnFailuresDeps {
  store: ChatStore;
  queue: TurnQueue;
  fanout: Fanout;
  lanes: ChatLanes;
  partials: PartialAnswers;
  log: Logger;
  metrics: Metrics;
  maxPendingTurnsPerChat: number;
  /** Sets, stores and broadcasts a state; the caller is in the chat's lane. */
  setStateInLane(
    chatId: string,
    state: WorkerStateName,
    detail: string,
    about: { turnId?: string; code?: string },
  ): Promise<WorkerStateEvent>;
  /** The chat waits in the queue again: announce its place. */
  requeued(chatId: string): void;
}

export class TurnFailures {
  #deps: TurnFailuresDeps;

  constructor(deps: TurnFailuresDeps) {
    this.#deps = deps;
  }

  /** Records a worker's failure report for `turnId` (of `chatId`, when the frame names it). */
  async fail(
    turnId: string,
    report: TurnFailRequest,
    chatId?: string,
  ): Promise<{ ok: true; duplicate: boolean }> {
    const found = await this.#deps.queue.get(turnId);
    if (!found || (chatId !== undefined && found.chatId !== chatId)) throw unknownTurn(turnId);
    return await this.#deps.lanes.run(
      found.chatId,
      () => this.#failInLane(found.chatId, turnId, report),
    );
  }

  /**
   * Re-opens the failed turn of `messageId` for `clientKey`. 404 for a message that is not
   * the visitor's in this chat, 409 `not_failed` when its turn did not fail.
   */
  retry(chatId: string, messageId: string, clientKey?: string): Promise<void> {
    const { queue, fanout, log } = this.#deps;
    return this.#deps.lanes.run(chatId, async () => {
      const turn = await queue.get(messageId);
      if (!turn || turn.chatId !== chatId) {
        throw new RelayError("unknown_message", `No message "${messageId}" of yours in this chat.`);
      }
      if (turn.status !== "failed") throw notFailed();
      // Each re-opened turn counts against the same cap as a new message.
      if (queue.openTurnsOf(chatId).length >= this.#deps.maxPendingTurnsPerChat) {
        throw new RelayError(
          "too_many_pending",
          "Terra is still working on your other messages, so wait for those answers before you retry.",
          { retryAfterSeconds: 5 },
        );
      }
      const visitor = await this.#visitorMessage(turn);
      const writes: ChatWrites = {};
      if (visitor) {
        const { failure: _failure, ...cleared } = visitor;
        writes.messages = [cleared];
      }
      const reopened = await queue.reopen(turn.id, writes, Date.now(), clientKey);
      if (!reopened) throw notFailed();
      this.#deps.metrics.inc("terrarium_turns_total", { transition: "retried" });
      log.info("turn retried", { chatId, turnId: turn.id });
      fanout.workers({
        type: "chat_activity",
        chatId,
        messageId: turn.messageId,
        emittedAt: new Date().toISOString(),
      });
      await this.#deps.setStateInLane(chatId, "queued", "Waiting for Terra", { turnId: turn.id });
      this.#deps.requeued(chatId);
    });
  }

  async #failInLane(
    chatId: string,
    turnId: string,
    report: TurnFailRequest,
  ): Promise<{ ok: true; duplicate: boolean }> {
    const { store, queue, fanout, log } = this.#deps;
    const turn = await queue.get(turnId);
    if (!turn) throw unknownTurn(turnId);
    if (turn.status === "failed") return { ok: true, duplicate: true };
    if (turn.status === "done" || turn.status === "cancelled") {
      throw new RelayError("turn_closed", "This turn was already answered or stopped");
    }
    if (turn.leaseId !== report.leaseId) {
      throw new RelayError("lease_lost", "This worker no longer holds the turn's lease");
    }
    const now = new Date().toISOString();
    const failure: TurnFailure = { code: report.code, error: report.error, failedAt: now };
    const messages: ChatMessage[] = [];
    const visitor = await this.#visitorMessage(turn);
    if (visitor) messages.push({ ...visitor, failure });
    let interrupted: ChatMessage | null = null;
    if (report.partial?.trim()) {
      interrupted = {
        id: newId(),
        chatId,
        sender: "Terra",
        content: report.partial,
        createdAt: now,
        seq: await store.nextSeq(chatId),
        replyTo: turn.id,
        interrupted: true,
      };
      // What the visitor saw is worth more than its tail: cut it until it fits a stored value.
      while (!fitsStoredValue(interrupted)) {
        interrupted.content = interrupted.content.slice(
          0,
          Math.floor(interrupted.content.length * 0.8),
        );
      }
      messages.push(interrupted);
    }
    await this.#deps.partials.settle(chatId);
    const closed = await queue.close(
      turn.id,
      "failed",
      interrupted?.seq ?? null,
      { messages, deletePartialOf: chatId },
      failure,
    );
    if (!closed) {
      throw new RelayError("conflict", "The turn changed while its failure was stored; retry");
    }
    this.#deps.partials.forget(chatId);
    const { metrics } = this.#deps;
    metrics.inc("terrarium_turns_total", { transition: "failed" });
    log.warn("turn failed", { chatId, turnId, code: report.code });
    if (interrupted) {
      metrics.inc("terrarium_messages_total", { sender: "Terra" });
      await fanout.chat({ type: "message", ...interrupted });
    }
    await this.#deps.setStateInLane(chatId, "error", report.error, { turnId, code: report.code });
    this.#deps.requeued(chatId);
    return { ok: true, duplicate: false };
  }

  /** The visitor message a turn answers (found by scanning for turns stored without its seq). */
  async #visitorMessage(turn: TurnRecord): Promise<ChatMessage | null> {
    const { store } = this.#deps;
    if (turn.messageSeq !== undefined) {
      const message = await store.getMessage(turn.chatId, turn.messageSeq);
      if (message?.id === turn.messageId) return message;
    }
    const messages = await store.listMessages(turn.chatId);
    return messages.find((m) => m.id === turn.messageId) ?? null;
  }
}

function notFailed(): RelayError {
  return new RelayError("not_failed", "This message has not failed, so there is nothing to retry.");
}
