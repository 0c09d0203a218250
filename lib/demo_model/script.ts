/**
 * The demo model's script: what a deterministic "LLM" says for a conversation.
 *
 * 1. When the last message is a tool result (role "tool"), the step is the final answer:
 *    a few sentences of prose drawn from the top results, with Markdown links to the pages
 *    used, and a sentence for each tool that failed (`prose.ts`; never raw JSON).
 * 2. Otherwise the last user message is read for directives:
 *    - `[tool NAME {json}]` (repeatable): call the tools in one step (parallel calls),
 *      each only if `tools` offers NAME
 *    - `[answer]TEXT[/answer]`: reply with exactly TEXT (markdown allowed)
 *    - `[long N]`: reply with N numbered words ("word1 word2 …")
 *    - `[think field|reasoning|tags|notag|none]`: where the reasoning goes — `field`
 *      (default) `delta.reasoning_content`; `reasoning` `delta.reasoning`; `tags`
 *      `<think>…</think>` in content; `notag` content ending in `</think>` with no opening
 *      tag (as some vLLM chat templates do); `none` no reasoning on a tool-call step
 *    - `[ollama]`: every tool-call delta uses index 0, with distinct ids
 *    - `[loop]`: keep calling the tools after their results, as long as tools are offered
 *
 *    Without a tool directive, a request offering `search_site` searches the site for the
 *    question; without tools, the answer is "Terra here. You asked: <question>".
 *
 * Every step starts with a short reasoning ("Thinking about: <first 40 chars>").
 *
 * `stepDeltas()` and `stepMessage()` render a step as the streamed deltas and as the
 * non-streamed message an OpenAI-compatible server would send.
 */

import { proseFromToolResults } from "./prose.ts";

/** One planned step: reasoning, answer text and tool calls. */
export interface ScriptedStep {
  reasoning: string;
  reasoningStyle: "field" | "reasoning" | "tags" | "notag" | "none";
  content: string;
  toolCalls: { id: string; name: string; arguments: string }[];
  /** Stream every tool-call delta at index 0 (some Ollama versions do). */
  ollamaIndexes: boolean;
}

/** A chat message as the script reads it. */
export type ScriptMessage = {
  role: string;
  content?: unknown;
  tool_calls?: { id?: string; function?: { name?: string; arguments?: string } }[];
  tool_call_id?: string;
};
/** A tool offered in the request, as the script reads it. */
export type ScriptTool = { function?: { name?: string } };

const THINK_DIRECTIVE = /\[think (field|reasoning|tags|notag|none)\]/;
const TOOL_DIRECTIVE = /\[tool ([A-Za-z0-9_.-]+) (\{.*?\})\]/g;
const ANSWER_DIRECTIVE = /\[answer\]([\s\S]*?)\[\/answer\]/;

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((part) => (part as { text?: string }).text ?? "").join("");
  }
  return "";
}

/** The reply the script gives for `messages` and `tools`. */
export function scriptReply(
  messages: ScriptMessage[],
  tools: ScriptTool[] | undefined,
): ScriptedStep {
  const offered = new Set((tools ?? []).map((t) => t.function?.name).filter(Boolean));
  const lastUserIndex = messages.findLastIndex((m) => m.role === "user");
  const question = textOf(messages[lastUserIndex]?.content);
  const style = (THINK_DIRECTIVE.exec(question)?.[1] ?? "field") as ScriptedStep["reasoningStyle"];
  const plain = question.replace(/\[[^\]]*\]/g, "").replace(/\s+/g, " ").trim();
  const step: ScriptedStep = {
    reasoning: `Thinking about: ${plain.slice(0, 40)}`,
    // `none` only silences tool-call steps; an answer always shows some reasoning.
    reasoningStyle: style === "none" ? "field" : style,
    content: "",
    toolCalls: [],
    ollamaIndexes: question.includes("[ollama]"),
  };

  const since = messages.slice(lastUserIndex + 1);
  const toolResults = since.filter((m) => m.role === "tool");
  const looping = question.includes("[loop]") && offered.size > 0;
  if (!looping && (toolResults.length > 0 || messages.at(-1)?.role === "tool")) {
    const calls = since.flatMap((m) => m.tool_calls ?? []);
    const results = toolResults.map((m, i) => {
      // Results name their call by id; a server that sent none is matched by position.
      const call = calls.find((c) => c.id && c.id === m.tool_call_id) ?? calls[i];
      return {
        name: call?.function?.name ?? "",
        content: textOf(m.content),
        arguments: call?.function?.arguments ?? "",
      };
    });
    step.content = proseFromToolResults(results, plain);
    return step;
  }

  const answer = ANSWER_DIRECTIVE.exec(question);
  if (answer) {
    step.content = answer[1]!;
    return step;
  }
  const calls = [...question.matchAll(TOOL_DIRECTIVE)].filter((m) => offered.has(m[1]!));
  if (calls.length > 0) {
    step.toolCalls = calls.map((m, i) => ({
      id: `call_${i}_${m[1]}`,
      name: m[1]!,
      arguments: m[2]!,
    }));
    if (style === "none") step.reasoningStyle = "none";
    return step;
  }
  const long = /\[long (\d+)\]/.exec(question);
  if (long) {
    step.content = Array.from({ length: Number(long[1]) }, (_, i) => `word${i + 1}`).join(" ");
    return step;
  }
  if (offered.has("search_site") && !question.includes("[tool ")) {
    const args = JSON.stringify({ query: plain });
    step.toolCalls = [{ id: "call_0_search_site", name: "search_site", arguments: args }];
    if (style === "none") step.reasoningStyle = "none";
    return step;
  }
  step.content = `Terra here. You asked: ${plain}`;
  return step;
}

/** Splits `text` into pieces of 3–7 characters (deterministically). */
function pieces(text: string): string[] {
  const out: string[] = [];
  for (let i = 0, n = 0; i < text.length; n++) {
    out.push(text.slice(i, i + 3 + (n % 5)));
    i += 3 + (n % 5);
  }
  return out;
}

/** Words with their following whitespace: "a b" → ["a ", "b"]. */
function words(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/** The `delta` objects of one scripted step, in streaming order. */
export function stepDeltas(step: ScriptedStep): Record<string, unknown>[] {
  const deltas: Record<string, unknown>[] = [{ role: "assistant", content: "" }];
  const style = step.reasoningStyle;
  if (style === "field" || style === "reasoning") {
    const field = style === "field" ? "reasoning_content" : "reasoning";
    for (const w of words(step.reasoning)) deltas.push({ [field]: w });
  } else if (style === "tags" || style === "notag") {
    const text = `${style === "tags" ? "<think>" : ""}${step.reasoning}</think>\n\n`;
    for (const p of pieces(text)) deltas.push({ content: p });
  }
  for (const w of words(step.content)) deltas.push({ content: w });
  // One list per call: the first delta names it, the others carry argument pieces.
  const perCall = step.toolCalls.map((call, i) => {
    const index = step.ollamaIndexes ? 0 : i;
    const first = {
      index,
      id: call.id,
      type: "function",
      function: { name: call.name, arguments: "" },
    };
    const rest = pieces(call.arguments).map((p) => ({ index, function: { arguments: p } }));
    return [first, ...rest];
  });
  if (step.ollamaIndexes) {
    // Index 0 for every call only works one call after the other.
    for (const list of perCall) for (const d of list) deltas.push({ tool_calls: [d] });
  } else {
    for (let round = 0; perCall.some((list) => round < list.length); round++) {
      for (const list of perCall) {
        if (round < list.length) deltas.push({ tool_calls: [list[round]] });
      }
    }
  }
  return deltas;
}

/** The non-streamed `message` of a step (reasoning where that style puts it). */
export function stepMessage(step: ScriptedStep): Record<string, unknown> {
  const style = step.reasoningStyle;
  const prefix = style === "tags"
    ? `<think>${step.reasoning}</think>\n\n`
    : style === "notag"
    ? `${step.reasoning}</think>\n\n`
    : "";
  return {
    role: "assistant",
    content: prefix + step.content,
    ...(style === "field" ? { reasoning_content: step.reasoning } : {}),
    ...(style === "reasoning" ? { reasoning: step.reasoning } : {}),
    ...(step.toolCalls.length
      ? {
        tool_calls: step.toolCalls.map((c) => ({
          id: c.id,
          type: "function",
          function: { name: c.name, arguments: c.arguments },
        })),
      }
      : {}),
  };
}
