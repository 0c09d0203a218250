/**
 * Terra's reply to a turn, stored exactly once: the reply message and the turn's close are one
 * write (`closeTurn()`), which also deletes the partial answer, and a repeated post (a retry,
 * or a second worker after a lease ran out) gets the stored reply back with `duplicate: true`.
 * On several relays a repeated post also makes sure the visitors got it: a post whose answer
 * Redis lost (it went away after writing) was stored but never sent.
 */
import { newId } from "../id.ts";
import type { AgentReplyRequest, ChatMessage, WorkerStateName } from "../protocol.ts";
import type { ChatLanes } from "./chat_lanes.ts";
import type { ChatSeqs } from "./chat_seqs.ts";
import { RelayError, unknownTurn } from "./errors.ts";
import type { Fanout } from "./fanout.ts";
import type { Metrics } from "./metrics.ts";
import type { PartialAnswers } from "./partial_answers.ts";
import {
  type ChatStore,
  type ChatWrites,
  fitsStoredValue,
  type TurnRecord,
} from "./store/chat_store.ts";
import type { TurnQueue } from "./turn_queue.ts";

/** What replies work with: the chat service's parts and its in-lane state setter. */
export interface TurnRepliesDeps {
  store: ChatStore;
  queue: TurnQueue;
  fanout: Fanout;
  lanes: ChatLanes;
  seqs: ChatSeqs;
  partials: PartialAnswers;
  metrics: Metrics;
  /** Sets, stores and broadcasts a state; the caller is in the chat's lane. */
  setStateInLane(chatId: string, state: WorkerStateName, detail: string): Promise<unknown>;
  /** A turn was answered: the queue moved, announce the places. */
  answered(): void;
}

/** A stored reply, and whether it was stored before this post. */
export interface PostedReply {
  message: ChatMessage;
  duplicate: boolean;
}

export class TurnReplies {
  readonly #deps: TurnRepliesDeps;

  constructor(deps: TurnRepliesDeps) {
    this.#deps = deps;
  }

  /** Stores the reply in the chat's lane, or returns the one stored before. */
  post(chatId: string, reply: AgentReplyRequest): Promise<PostedReply> {
    return this.#deps.lanes.run(chatId, () => this.#store(chatId, reply));
  }

  async #store(chatId: string, reply: AgentReplyRequest): Promise<PostedReply> {
    const { store, queue, fanout, seqs, partials, metrics } = this.#deps;
    const turn = reply.replyTo ? await queue.get(reply.replyTo) : queue.currentTurn(chatId);
    if (reply.replyTo && (!turn || turn.chatId !== chatId)) throw unknownTurn(reply.replyTo);
    if (turn && (turn.status === "done" || turn.status === "cancelled")) {
      return { message: await this.#answeredBefore(turn), duplicate: true };
    }
    if (turn?.status === "failed") {
      throw new RelayError(
        "turn_failed",
        "This message's turn failed; it is answered after a retry.",
      );
    }
    const { seq } = await seqs.next(chatId);
    const message: ChatMessage = {
      id: newId(),
      chatId,
      sender: "Terra",
      content: reply.content,
      createdAt: new Date().toISOString(),
      seq,
    };
    if (turn) message.replyTo = turn.id;
    if (reply.stopped) message.stopped = true;
    if (reply.sources?.length) message.sources = reply.sources;
    if (!fitsStoredValue(message)) {
      throw new RelayError("reply_too_large", "The reply is larger than the store allows (60 KiB)");
    }
    const writes: ChatWrites = { messages: [message], deletePartialOf: chatId };
    await partials.settle(chatId);
    if (turn) {
      const closed = await queue.close(turn.id, "done", seq, writes);
      if (!closed) {
        const current = await queue.get(turn.id);
        if (current) return { message: await this.#answeredBefore(current), duplicate: true };
        throw new RelayError("conflict", "The turn changed while the reply was stored; retry");
      }
      metrics.inc("terrarium_turns_total", { transition: "answered" });
    } else {
      if (!(await store.writeChat(writes))) {
        throw new RelayError("store_busy", "The store refused the write; retry");
      }
    }
    partials.forget(chatId);
    metrics.inc("terrarium_messages_total", { sender: "Terra" });
    await fanout.chat({ type: "message", ...message });
    await this.#deps.setStateInLane(chatId, "responded", respondedDetail(message));
    this.#deps.answered();
    return { message, duplicate: false };
  }

  /**
   * The reply stored before for `turn`, which a repeated post gets back. On several relays it
   * is also made sure the visitors have it: an earlier post whose answer Redis lost (it went
   * away after writing) was stored but never sent, nor was its `responded` state.
   */
  async #answeredBefore(turn: TurnRecord): Promise<ChatMessage> {
    const { store, fanout } = this.#deps;
    const message = await this.#existingReply(turn);
    if (!fanout.shared) return message;
    await fanout.ensurePublished({ type: "message", ...message });
    const state = await store.getWorkerState(turn.chatId);
    if (!state || state.seq < message.seq) {
      await this.#deps.setStateInLane(turn.chatId, "responded", respondedDetail(message));
    }
    return message;
  }

  async #existingReply(turn: TurnRecord): Promise<ChatMessage> {
    if (turn.status === "done" && turn.replySeq !== null) {
      const message = await this.#deps.store.getMessage(turn.chatId, turn.replySeq);
      if (message) return message;
    }
    throw new RelayError("turn_closed", "This message was stopped before it was answered");
  }
}

/** The `responded` state's words for a reply. */
function respondedDetail(message: ChatMessage): string {
  return message.stopped ? "Stopped at your request" : "Terra answered";
}
