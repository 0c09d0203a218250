/**
 * Turns a chat's stored messages into the model's conversation for one turn: messages up
 * to and including the visitor message being answered (later ones belong to later turns),
 * trimmed from the oldest end to a token budget. Tokens are estimated at four characters
 * each, which errs on the side of a shorter history.
 *
 * Errors are not answers (issue 16): a failure sentence an older worker stored as a reply
 * is left out, and so is an interrupted reply once a retry answered the same message.
 */
import type OpenAI from "openai";
import type { ChatMessage } from "../protocol.ts";
import { FAILURE_SENTENCES } from "./failure_words.ts";

/** A rough token estimate: ~4 characters per token plus per-message overhead. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4) + 4;
}

/** The conversation for answering `messageId`, newest messages kept within `budget` tokens. */
export function conversationFor(
  messages: ChatMessage[],
  messageId: string,
  budget: number,
): OpenAI.ChatCompletionMessageParam[] {
  const end = messages.findIndex((m) => m.id === messageId);
  const relevant = end === -1 ? messages : messages.slice(0, end + 1);
  const out: OpenAI.ChatCompletionMessageParam[] = [];
  const answered = new Set<string>();
  let used = 0;
  for (let i = relevant.length - 1; i >= 0; i--) {
    const message = relevant[i]!;
    if (message.sender === "Terra") {
      // A stopped reply with nothing in it carries no information for the model.
      if (!message.content.trim() || FAILURE_SENTENCES.has(message.content.trim())) continue;
      // Newest first: a later reply to the same message supersedes an interrupted one.
      if (message.replyTo && answered.has(message.replyTo) && message.interrupted) continue;
      if (message.replyTo) answered.add(message.replyTo);
    }
    const cost = estimateTokens(message.content);
    // The message being answered is always kept, cut to the budget if it must be.
    if (used + cost > budget && out.length > 0) break;
    const content = out.length === 0 ? message.content.slice(0, budget * 4) : message.content;
    out.push(
      message.sender === "Visitor" ? { role: "user", content } : { role: "assistant", content },
    );
    used += cost;
  }
  return out.reverse();
}
