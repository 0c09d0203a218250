/** The conversation as a Markdown file the visitor can keep, with each answer's sources. */
import type { ShownMessage } from "./chat_state.ts";
import { sourcesMarkdown } from "./sources.ts";

export function transcriptMarkdown(
  chatId: string,
  messages: readonly ShownMessage[],
  options: { name?: string; failures?: ReadonlyMap<string, { error: string }> } = {},
): string {
  const name = options.name ?? "Terra";
  const lines = [
    `# Chat with ${name}`,
    ``,
    `Chat ${chatId}, saved ${new Date().toISOString()}`,
    ``,
  ];
  for (const message of messages) {
    const who = message.sender === "Terra" ? name : "You";
    const mark = message.stopped ? " (stopped)" : message.interrupted ? " (interrupted)" : "";
    lines.push(`## ${who}, ${message.createdAt}${mark}`, ``, message.content, ``);
    const sources = sourcesMarkdown(message.sources);
    if (sources.length) lines.push(`Sources:`, ``, ...sources, ``);
    const failure = options.failures?.get(message.id);
    if (message.sender === "Visitor" && failure) lines.push(`(Not answered: ${failure.error})`, ``);
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
