/**
 * The demo model's script: what a deterministic "LLM" says for a conversation. The last
 * user message may carry directives:
 *
 * - `[tool NAME {json}]` (repeatable): call tools in one step, if `tools` offers NAME
 * - `[answer]TEXT[/answer]`: reply with exactly TEXT
 * - `[long N]`: reply with N numbered words ("word1 word2 …")
 * - `[think field|reasoning|tags|notag|none]`: where reasoning goes (default `field`:
 *   `reasoning_content`; `reasoning`; `<think>…</think>` in content; content ending in
 *   `</think>` without the opening tag; no reasoning)
 * - `[ollama]`: every tool-call delta uses index 0 (some Ollama versions do)
 * - `[loop]`: ask for the tools again after their results, as long as tools are offered
 *
 * Without a tool directive, a request offering `search_site` searches the site for the
 * question. After tool results the model answers "From TOOLS: RESULTS…".
 */

/** One planned step: reasoning, answer text and tool calls. */
export interface ScriptedStep {
  reasoning: string;
  reasoningStyle: "field" | "reasoning" | "tags" | "notag" | "none";
  content: string;
  toolCalls: { id: string; name: string; arguments: string }[];
  ollamaIndexes: boolean;
}

type Message = { role: string; content?: unknown; name?: string; tool_call_id?: string };
type ToolSpec = { function?: { name?: string } };

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((part) => (part as { text?: string }).text ?? "").join("");
  }
  return "";
}

/** The reply the script gives for `messages` and `tools`. */
export function scriptReply(messages: Message[], tools: ToolSpec[] | undefined): ScriptedStep {
  const offered = new Set((tools ?? []).map((t) => t.function?.name).filter(Boolean));
  const lastUserIndex = messages.findLastIndex((m) => m.role === "user");
  const question = textOf(messages[lastUserIndex]?.content);
  const style = (/\[think (field|reasoning|tags|notag|none)\]/.exec(question)?.[1] ??
    "field") as ScriptedStep["reasoningStyle"];
  const plain = question.replace(/\[[^\]]*\]/g, "").replace(/\[\/answer\]/g, "").trim();
  const step: ScriptedStep = {
    reasoning: style === "none" ? "" : `Thinking about: ${plain.slice(0, 40)}`,
    reasoningStyle: style,
    content: "",
    toolCalls: [],
    ollamaIndexes: question.includes("[ollama]"),
  };

  const toolResults = messages.slice(lastUserIndex + 1).filter((m) => m.role === "tool");
  const looping = question.includes("[loop]") && offered.size > 0;
  if (!looping && (toolResults.length > 0 || messages.at(-1)?.role === "tool")) {
    const names = messages.slice(lastUserIndex + 1).flatMap((m) =>
      ((m as { tool_calls?: { function: { name: string } }[] }).tool_calls ?? []).map((c) =>
        c.function.name
      )
    );
    const results = toolResults.map((m) => textOf(m.content)).join(" ").replace(/\s+/g, " ");
    step.content = `From ${[...new Set(names)].join(", ") || "the tools"}: ${
      results.slice(0, 300)
    }`;
    return step;
  }

  const answer = /\[answer\]([\s\S]*?)\[\/answer\]/.exec(question);
  if (answer) {
    step.content = answer[1]!;
    return step;
  }
  const calls = [...question.matchAll(/\[tool ([a-z_]+) (\{.*?\})\]/g)]
    .filter((m) => offered.has(m[1]!));
  if (calls.length > 0) {
    step.toolCalls = calls.map((m, i) => ({
      id: `call_${i}_${m[1]}`,
      name: m[1]!,
      arguments: m[2]!,
    }));
    return step;
  }
  const long = /\[long (\d+)\]/.exec(question);
  if (long) {
    step.content = Array.from({ length: Number(long[1]) }, (_, i) => `word${i + 1}`).join(" ");
    return step;
  }
  if (offered.has("search_site") && !question.includes("[tool")) {
    step.toolCalls = [{
      id: "call_0_search_site",
      name: "search_site",
      arguments: JSON.stringify({ query: plain }),
    }];
    return step;
  }
  step.content = `Terra here. You asked: ${plain}`;
  return step;
}
