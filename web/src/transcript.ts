/** The conversation as a Markdown file the visitor can keep. */
import type { ShownMessage } from "./chat_state.ts";

export function transcriptMarkdown(chatId: string, messages: readonly ShownMessage[]): string {
  const lines = [`# Chat with Terra`, ``, `Chat ${chatId}, saved ${new Date().toISOString()}`, ``];
  for (const message of messages) {
    const who = message.sender === "Terra" ? "Terra" : "You";
    const stopped = message.stopped ? " (stopped)" : "";
    lines.push(`## ${who}, ${message.createdAt}${stopped}`, ``, message.content, ``);
  }
  return lines.join("\n");
}

/** Offers `text` as a download named `filename`. */
export function download(filename: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: "text/markdown;charset=utf-8" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
