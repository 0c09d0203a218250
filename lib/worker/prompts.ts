/**
 * The system prompt (SPEC §4): persona and instructions come from files in `content/`,
 * not from code; the tool list is appended from the registry so it cannot drift.
 */
import { join } from "node:path";
import type { ToolRegistry } from "./tool_registry.ts";

/** The files the prompt is made of, relative to the content dir. */
export const PROMPT_FILES = ["persona.md", "system_prompt.md"] as const;

/** Reads the persona and instructions and lists the tools; a missing file is an error. */
export async function loadSystemPrompt(
  contentDir: string,
  registry: ToolRegistry,
): Promise<string> {
  const parts: string[] = [];
  for (const file of PROMPT_FILES) {
    const path = join(contentDir, file);
    try {
      parts.push((await Deno.readTextFile(path)).trim());
    } catch (error) {
      throw new Error(`Cannot read the prompt file "${path}": ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  const tools = registry.openAiTools().map((t) =>
    `- ${t.type === "function" ? t.function.name : ""}: ${
      t.type === "function" ? t.function.description ?? "" : ""
    }`
  );
  parts.push(`Tools you can call:\n${tools.join("\n")}`);
  return parts.join("\n\n");
}
