/**
 * Optional transcripts on the LLM host (`CHAT_LOG_DIR`, SPEC §9): one JSON line per
 * finished turn, one file per UTC day. Off when the variable is unset; a failed write is
 * logged and never stops an answer.
 */
import { join } from "node:path";
import type { Logger } from "../log.ts";

/** One finished turn. */
export interface ChatLogEntry {
  chatId: string;
  turnId: string;
  outcome: string;
  question: string;
  answer: string;
  tools: string[];
}

export class ChatLog {
  #dir: string;
  #log: Logger;
  #ready: Promise<void> | null = null;

  /** `dir` "" disables logging. */
  constructor(dir: string, log: Logger) {
    this.#dir = dir;
    this.#log = log;
  }

  /** Appends an entry to today's file. */
  async append(entry: ChatLogEntry, now = new Date()): Promise<void> {
    if (!this.#dir) return;
    try {
      this.#ready ??= Deno.mkdir(this.#dir, { recursive: true });
      await this.#ready;
      const file = join(this.#dir, `${now.toISOString().slice(0, 10)}.jsonl`);
      await Deno.writeTextFile(file, JSON.stringify({ at: now.toISOString(), ...entry }) + "\n", {
        append: true,
      });
    } catch (error) {
      this.#ready = null;
      this.#log.warn("chat log write failed", { error });
    }
  }
}
