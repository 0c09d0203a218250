/**
 * What the page knows about one chat, rebuilt from the relay's events: the messages in
 * order, the answer being streamed (answer, reasoning and tool activity, each applied at
 * its offset so a replayed or repeated chunk changes nothing), the worker's state, and the
 * highest sequence number seen, which a reconnecting socket resumes from; and which visitor
 * messages' turns failed (a failure belongs to its question, never to Terra's words).
 */
import type {
  AssistantChunkEvent,
  ChatEvent,
  ChatMessage,
  ChunkKind,
  TurnFailure,
  WorkerStateEvent,
} from "../../lib/protocol.ts";

/** A message as shown, with the reasoning and tool activity that led to it (this visit). */
export interface ShownMessage extends ChatMessage {
  reasoning: string;
  tool: string;
}

/** The answer being generated for the visitor message `turnId`. */
export interface LiveAnswer {
  turnId: string | null;
  texts: Record<ChunkKind, string>;
  done: boolean;
}

/** What an event changed, so the view redraws only that. */
export type Change =
  | { kind: "message"; message: ShownMessage; replacesLive: boolean }
  | { kind: "live" }
  | {
    kind: "state";
    state: WorkerStateEvent;
    /** The visitor message whose failure this state added or cleared. */
    failure?: { messageId: string; failure: TurnFailure | null };
  }
  | { kind: "none" };

export class ChatState {
  readonly messages: ShownMessage[] = [];
  live: LiveAnswer | null = null;
  workerState: WorkerStateEvent | null = null;
  lastSeq = 0;
  #ids = new Set<string>();
  /** Visitor messages that have their stored reply: late chunks of those turns are dropped. */
  #answered = new Set<string>();
  /** Failed turns by visitor message id, until a retry re-opens them or an answer arrives. */
  readonly failures = new Map<string, TurnFailure>();

  /** Applies one event from the relay. */
  apply(event: ChatEvent): Change {
    this.lastSeq = Math.max(this.lastSeq, event.seq);
    switch (event.type) {
      case "message":
        return this.#message(event);
      case "assistantChunk":
        return this.#chunk(event);
      case "workerState":
        if (this.workerState && this.workerState.seq > event.seq) return { kind: "none" };
        this.workerState = event;
        return { kind: "state", state: event, ...this.#failureOf(event) };
    }
  }

  /**
   * Takes failures from stored messages (`GET /messages` after a reload carries them; the
   * replay may not). A failure already cleared by a later state here is not brought back.
   */
  applyHistory(messages: readonly ChatMessage[]): string[] {
    const changed: string[] = [];
    const reopened = this.workerState && this.workerState.state !== "error"
      ? this.workerState.turnId
      : undefined;
    for (const message of messages) {
      if (message.sender !== "Visitor" || !message.failure || !this.#ids.has(message.id)) continue;
      if (message.id === reopened) continue;
      if (this.failures.has(message.id)) continue;
      this.failures.set(message.id, message.failure);
      changed.push(message.id);
    }
    return changed;
  }

  #failureOf(event: WorkerStateEvent): Pick<Extract<Change, { kind: "state" }>, "failure"> {
    const messageId = event.turnId;
    if (!messageId) return {};
    if (event.state === "error") {
      const failure: TurnFailure = {
        code: event.code ?? "failed",
        error: event.detail,
        failedAt: event.updatedAt,
      };
      this.failures.set(messageId, failure);
      return { failure: { messageId, failure } };
    }
    if (event.state !== "queued" && event.state !== "processing") return {};
    // The turn is open again (a retry): its new answer's chunks must not be taken for late
    // chunks of the interrupted one.
    if (event.state === "queued") this.#answered.delete(messageId);
    if (this.failures.delete(messageId)) {
      this.#answered.delete(messageId);
      return { failure: { messageId, failure: null } };
    }
    return {};
  }

  /** Whether an answer is being generated now (the stop button shows). */
  get answering(): boolean {
    const state = this.workerState?.state;
    if (state === "queued" || state === "processing") return true;
    return state === undefined && !!this.live && !this.live.done;
  }

  #message(event: ChatEvent & { type: "message" }): Change {
    if (this.#ids.has(event.id)) return { kind: "none" };
    this.#ids.add(event.id);
    const { type: _type, ...fields } = event;
    const answersLive = event.sender === "Terra" && this.live !== null &&
      (this.live.turnId === null || this.live.turnId === event.replyTo);
    const message: ShownMessage = {
      ...fields,
      reasoning: answersLive ? this.live!.texts.reasoning : "",
      tool: answersLive ? this.live!.texts.tool : "",
    };
    if (answersLive) this.live = null;
    if (message.replyTo) this.#answered.add(message.replyTo);
    if (message.sender === "Visitor" && message.failure) {
      this.failures.set(message.id, message.failure);
    }
    // Events arrive in order; a message older than the newest is a replay seen late.
    let at = this.messages.length;
    while (at > 0 && this.messages[at - 1]!.seq > message.seq) at--;
    this.messages.splice(at, 0, message);
    return { kind: "message", message, replacesLive: answersLive };
  }

  #chunk(event: AssistantChunkEvent): Change {
    // A chunk of a turn that already has its stored answer is late; drop it.
    if (event.turnId && this.#answered.has(event.turnId)) {
      return { kind: "none" };
    }
    if (!this.live || this.live.turnId !== event.turnId) {
      this.live = {
        turnId: event.turnId,
        texts: { answer: "", reasoning: "", tool: "" },
        done: false,
      };
    }
    const texts = this.live.texts;
    texts[event.kind] = texts[event.kind].slice(0, event.offset) + event.content;
    if (event.done) this.live.done = true;
    return { kind: "live" };
  }
}
