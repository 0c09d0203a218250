/**
 * Streams one turn's answer, reasoning and tool activity to the relay as chunks with
 * offsets. Chunks go out one at a time, in order; whatever arrives while a send is in
 * flight is merged into the next chunk, so a slow path (HTTP while the socket is down)
 * sends fewer, larger chunks instead of falling behind.
 *
 * When the relay has less of a text than a chunk assumes (`chunk_gap`: it restarted, or its
 * store lost the last write-through), `resync()` sends that text again from offset 0, once
 * for every chunk already in flight, so the visitor's stream goes on rather than waiting for
 * the reply.
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
  #onError: (error: unknown, chunk: Pending) => void;
  #texts: Record<ChunkKind, string> = { answer: "", reasoning: "", tool: "" };
  /** Per kind, the length of the text last sent again whole (chunks before it are covered). */
  #resentUpTo: Record<ChunkKind, number> = { answer: -1, reasoning: -1, tool: -1 };
  #finished = false;
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;

  /** `onError` hears of each chunk the relay refused, with the chunk. */
  constructor(send: ChunkSender, onError: (error: unknown, chunk: Pending) => void) {
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
    this.#finished = true;
    this.#push({ kind: "answer", offset: this.#texts.answer.length, content: "", done: true });
    await this.flushed();
  }

  /**
   * The relay refused a chunk of `kind` at `offset` as past its text: sends the whole text of
   * that kind again from 0, unless a resend after that chunk already did (or will).
   */
  resync(kind: ChunkKind, offset: number): void {
    if (this.#resentUpTo[kind] > offset) return;
    const text = this.#texts[kind];
    this.#resentUpTo[kind] = text.length;
    // Queued chunks of this kind are inside the text sent now.
    this.#queue = this.#queue.filter((chunk) => chunk.kind !== kind || chunk.done);
    this.#push({ kind, offset: 0, content: text, done: false });
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
          this.#onError(error, chunk);
        }
      }
    } finally {
      this.#flushing = null;
    }
  }
}
