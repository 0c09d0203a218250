/**
 * What a legacy visitor socket (authenticated by `accessCode` in its query, as the original
 * page connects) receives: exactly the original relay's frames. The original page treats
 * any frame that is not `workerState` or `assistantChunk` as a chat message, and appends
 * every chunk's `content` to the answer it shows, so:
 *
 * - a message goes out as `{id, chatId, sender, content, createdAt}` (no `type`, `seq`…);
 * - `workerState` as `{type, chatId, state, detail, updatedAt}`, detail null when empty;
 * - `assistantChunk` as `{type, chatId, content, done, emittedAt}`, answer text only:
 *   reasoning and tool chunks are dropped (a `done` one still ends the answer, emptied),
 *   and answer text the page already has (a resent snapshot) is not sent again;
 * - no `ready`, no sequence numbers, no replayed chunk snapshot (the page cannot tell a
 *   snapshot from new text; it fetches history over HTTP, as before).
 *
 * One instance per socket: it remembers how much of the current answer went out.
 */
import type { ChatEvent } from "../protocol.ts";

export class LegacyFrames {
  /** The turn whose answer is being streamed (null: a legacy worker outside a turn). */
  #turnId: string | null | undefined = undefined;
  /** Characters of that answer's text the relay has streamed so far. */
  #answerLength = 0;

  /** The frame to send for a live event, or null when a legacy client must not see it. */
  frame(event: ChatEvent): string | null {
    switch (event.type) {
      case "message":
        return JSON.stringify({
          id: event.id,
          chatId: event.chatId,
          sender: event.sender,
          content: event.content,
          createdAt: event.createdAt,
        });
      case "workerState":
        return JSON.stringify({
          type: "workerState",
          chatId: event.chatId,
          state: event.state,
          detail: event.detail || null,
          updatedAt: event.updatedAt,
        });
      case "assistantChunk":
        return this.#chunk(event);
    }
  }

  /** The frame for an event replayed on connect: chunk snapshots are left out. */
  replayFrame(event: ChatEvent): string | null {
    return event.type === "assistantChunk" ? null : this.frame(event);
  }

  #chunk(event: Extract<ChatEvent, { type: "assistantChunk" }>): string | null {
    if (event.turnId !== this.#turnId) {
      this.#turnId = event.turnId;
      this.#answerLength = 0;
    }
    let content = "";
    if (event.kind === "answer") {
      // Only what lies beyond the text already streamed: a snapshot resent from offset 0
      // adds nothing. The page cannot take text back, so after a cut-back (the worker found
      // that text was reasoning) new text is appended from where the relay's text now ends.
      content = event.content.slice(Math.max(0, this.#answerLength - event.offset));
      this.#answerLength = event.offset + event.content.length;
    }
    if (event.done) {
      this.#turnId = undefined;
      this.#answerLength = 0;
    } else if (!content) return null;
    return JSON.stringify({
      type: "assistantChunk",
      chatId: event.chatId,
      content,
      done: event.done,
      emittedAt: event.emittedAt,
    });
  }
}
