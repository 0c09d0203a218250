/**
 * Streams one turn's answer, reasoning and tool activity to the relay as chunks with
 * offsets. Chunks go out one at a time, in order; whatever arrives while a send is in
 * flight is merged into the next chunk, so a slow path (HTTP while the socket is down)
 * sends fewer, larger chunks instead of falling behind.
 */
import type { ChunkKind } from "../protocol.ts";

/** Sends one chunk; resolves when it is handed over. */
export type ChunkSender = (chunk: {
  content: string;
  kind: ChunkKind;
  offset: number;
  done: boolean;
}) => Promise<void>;

interface Pending {
  kind: ChunkKind;
  offset: number;
  content: string;
  done: boolean;
}

export class AnswerStream {
  #send: ChunkSender;
  #onError: (error: unknown) => void;
  #texts: Record<ChunkKind, string> = { answer: "", reasoning: "", tool: "" };
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;

  constructor(send: ChunkSender, onError: (error: unknown) => void) {
    this.#send = send;
    this.#onError = onError;
  }

  /** The answer text so far (what the visitor has been shown). */
  get answer(): string {
    return this.#texts.answer;
  }

  get reasoning(): string {
    return this.#texts.reasoning;
  }

  /** Appends answer text. */
  appendAnswer(text: string): void {
    this.#append("answer", text);
  }

  /** Appends reasoning text. */
  appendReasoning(text: string): void {
    this.#append("reasoning", text);
  }

  /** Adds a line of tool activity ("Searching the site…"). */
  toolActivity(line: string): void {
    this.#append("tool", `${line}\n`);
  }

  /** Cuts the answer back to `length` characters (text that turned out to be reasoning). */
  truncateAnswer(length: number): void {
    if (length >= this.#texts.answer.length) return;
    this.#texts.answer = this.#texts.answer.slice(0, length);
    this.#push({ kind: "answer", offset: length, content: "", done: false });
  }

  /** Marks the stream done and waits until every chunk is handed over. */
  async finish(): Promise<void> {
    this.#push({ kind: "answer", offset: this.#texts.answer.length, content: "", done: true });
    await this.flushed();
  }

  /** Resolves once the queue is empty. */
  async flushed(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  #append(kind: ChunkKind, text: string): void {
    if (!text) return;
    const offset = this.#texts[kind].length;
    this.#texts[kind] += text;
    this.#push({ kind, offset, content: text, done: false });
  }

  #push(chunk: Pending): void {
    const last = this.#queue.at(-1);
    if (
      last && !last.done && !chunk.done && last.kind === chunk.kind &&
      last.offset + last.content.length === chunk.offset
    ) {
      last.content += chunk.content;
    } else {
      this.#queue.push(chunk);
    }
    this.#flushing ??= this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length) {
        const chunk = this.#queue.shift()!;
        try {
          await this.#send(chunk);
        } catch (error) {
          this.#onError(error);
        }
      }
    } finally {
      this.#flushing = null;
    }
  }
}
