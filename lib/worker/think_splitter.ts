/**
 * Separates `<think>…</think>` reasoning from answer text in streamed content, with tags
 * split across chunk boundaries. Some chat templates put the opening tag in the prompt, so
 * the stream starts mid-thought and only `</think>` appears: text already passed on as
 * answer is then retracted and re-issued as reasoning.
 */

/** What one piece of content turned into. */
export interface SplitOutput {
  answer: string;
  reasoning: string;
  /** The answer emitted so far was reasoning after all (a late `</think>`). */
  retractAnswer: boolean;
}

const OPEN = "<think>";
const CLOSE = "</think>";

export class ThinkSplitter {
  #inThink = false;
  #seenTag = false;
  #pending = "";
  #answerSoFar = "";

  /** Feeds a content delta. */
  push(text: string): SplitOutput {
    const out: SplitOutput = { answer: "", reasoning: "", retractAnswer: false };
    let buffer = this.#pending + text;
    this.#pending = "";
    while (buffer) {
      const tag = this.#inThink ? CLOSE : OPEN;
      const at = buffer.indexOf(tag);
      // Before any tag, a bare `</think>` means the whole stream so far was reasoning.
      const lateClose = !this.#inThink && !this.#seenTag ? buffer.indexOf(CLOSE) : -1;
      if (lateClose !== -1 && (at === -1 || lateClose < at)) {
        out.retractAnswer = this.#answerSoFar.length > 0;
        out.reasoning += this.#answerSoFar + out.answer + buffer.slice(0, lateClose);
        out.answer = "";
        this.#answerSoFar = "";
        this.#seenTag = true;
        buffer = buffer.slice(lateClose + CLOSE.length);
        continue;
      }
      if (at === -1) {
        // Hold back a suffix that could be the start of a tag.
        const keep = partialTagSuffix(buffer, this.#inThink ? [CLOSE] : [OPEN, CLOSE]);
        this.#emit(out, buffer.slice(0, buffer.length - keep));
        this.#pending = buffer.slice(buffer.length - keep);
        break;
      }
      this.#emit(out, buffer.slice(0, at));
      this.#inThink = !this.#inThink;
      this.#seenTag = true;
      buffer = buffer.slice(at + tag.length);
    }
    return out;
  }

  /** Flushes text held back at the end of the stream. */
  end(): SplitOutput {
    const out: SplitOutput = { answer: "", reasoning: "", retractAnswer: false };
    this.#emit(out, this.#pending);
    this.#pending = "";
    return out;
  }

  #emit(out: SplitOutput, text: string): void {
    if (!text) return;
    if (this.#inThink) out.reasoning += text;
    else {
      out.answer += text;
      this.#answerSoFar += text;
    }
  }
}

function partialTagSuffix(text: string, tags: string[]): number {
  let best = 0;
  for (const tag of tags) {
    for (let n = Math.min(tag.length - 1, text.length); n > best; n--) {
      if (text.endsWith(tag.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}
