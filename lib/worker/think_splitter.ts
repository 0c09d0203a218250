/**
 * Separates `<think>…</think>` reasoning from answer text in streamed content (SPEC §4),
 * with tags split across chunk boundaries. Some chat templates (vLLM's for several
 * reasoning models) put the opening tag into the prompt, so the stream starts mid-thought
 * and only `</think>` appears: the text already passed on as answer is then retracted and
 * re-issued as reasoning. Whitespace at the start of the answer is dropped, since models
 * put a blank line after `</think>`.
 */

/** What one piece of content turned into. */
export interface SplitOutput {
  answer: string;
  reasoning: string;
  /** The answer emitted before this output was reasoning after all (a late `</think>`). */
  retractAnswer: boolean;
}

const OPEN = "<think>";
const CLOSE = "</think>";

/** Splits a stream of content deltas into answer and reasoning. */
export class ThinkSplitter {
  #inThink = false;
  /** A tag was seen: a later bare `</think>` is just text, not a late close. */
  #seenTag = false;
  /** Text held back because it may be the start of a tag. */
  #pending = "";
  /** Answer emitted by earlier `push()` calls, in case a late `</think>` retracts it. */
  #answerSoFar = "";
  #answerStarted = false;

  /** Feeds a content delta. */
  push(text: string): SplitOutput {
    const out: SplitOutput = { answer: "", reasoning: "", retractAnswer: false };
    let buffer = this.#pending + text;
    this.#pending = "";
    while (buffer) {
      const tag = this.#inThink ? CLOSE : OPEN;
      const at = buffer.indexOf(tag);
      const lateClose = this.#inThink || this.#seenTag ? -1 : buffer.indexOf(CLOSE);
      if (lateClose !== -1 && (at === -1 || lateClose < at)) {
        // Everything so far, shown or not, was reasoning.
        out.retractAnswer ||= this.#answerSoFar.length > 0;
        out.reasoning += this.#answerSoFar + out.answer + buffer.slice(0, lateClose);
        out.answer = "";
        this.#answerSoFar = "";
        this.#answerStarted = false;
        this.#seenTag = true;
        buffer = buffer.slice(lateClose + CLOSE.length);
        continue;
      }
      if (at === -1) {
        const tags = this.#inThink || this.#seenTag ? [tag] : [OPEN, CLOSE];
        const keep = partialTagSuffix(buffer, tags);
        this.#emit(out, buffer.slice(0, buffer.length - keep));
        this.#pending = buffer.slice(buffer.length - keep);
        break;
      }
      this.#emit(out, buffer.slice(0, at));
      this.#inThink = !this.#inThink;
      this.#seenTag = true;
      buffer = buffer.slice(at + tag.length);
    }
    this.#answerSoFar += out.answer;
    return out;
  }

  /** Flushes text held back at the end of the stream. */
  end(): SplitOutput {
    const out: SplitOutput = { answer: "", reasoning: "", retractAnswer: false };
    this.#emit(out, this.#pending);
    this.#pending = "";
    this.#answerSoFar += out.answer;
    return out;
  }

  #emit(out: SplitOutput, text: string): void {
    if (this.#inThink) {
      out.reasoning += text;
      return;
    }
    const answer = this.#answerStarted ? text : text.trimStart();
    if (answer) this.#answerStarted = true;
    out.answer += answer;
  }
}

/** The length of the longest suffix of `text` that is a proper prefix of one of `tags`. */
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
