/**
 * The tool loop (SPEC §4): stream a model step; when it asks for tools, run them locally
 * and feed the results back; after `maxToolSteps` tool steps, ask once more without
 * tools for the final answer. Whether a step is a tool step is decided from the assembled
 * calls, not from `finish_reason`.
 */
import type OpenAI from "openai";
import type { StepCallbacks, StepResult } from "./agent_client.ts";
import type { AnswerStream } from "./answer_stream.ts";
import type { ToolContext, ToolRegistry } from "./tool_registry.ts";

/** The part of the agent client the loop needs. */
export interface StepModel {
  streamStep(
    messages: OpenAI.ChatCompletionMessageParam[],
    tools: OpenAI.ChatCompletionTool[] | undefined,
    callbacks: StepCallbacks,
    signal: AbortSignal,
  ): Promise<StepResult>;
}

export interface ToolLoopOptions {
  model: StepModel;
  registry: ToolRegistry;
  systemPrompt: string;
  conversation: OpenAI.ChatCompletionMessageParam[];
  maxToolSteps: number;
  stream: AnswerStream;
  signal: AbortSignal;
  toolContext: Omit<ToolContext, "signal">;
  /** Filled with the names of the tools called, as they are called. */
  toolsUsed?: string[];
}

/** What the loop did. The answer itself is `stream.answer`. */
export interface ToolLoopResult {
  toolSteps: number;
  toolsUsed: string[];
}

const FINAL_NUDGE =
  "You have used all the tool calls you may use for this question. Answer now with what you have.";

/** Runs the loop until the model answers without asking for tools. */
export async function runToolLoop(options: ToolLoopOptions): Promise<ToolLoopResult> {
  const { model, registry, stream, signal } = options;
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: "system", content: options.systemPrompt },
    ...options.conversation,
  ];
  const tools = registry.openAiTools();
  const toolsUsed = options.toolsUsed ?? [];
  for (let toolSteps = 0;; toolSteps++) {
    const final = toolSteps >= options.maxToolSteps;
    if (final && toolSteps > 0) messages.push({ role: "system", content: FINAL_NUDGE });
    const stepStart = stream.answer.length;
    // Each model call thinks afresh; a blank line keeps its reasoning apart from the last.
    let reasoningSeparator = stream.reasoning ? "\n\n" : "";
    const step = await model.streamStep(
      messages,
      final || tools.length === 0 ? undefined : tools,
      {
        onAnswer: (text) => stream.appendAnswer(text),
        onReasoning: (text) => {
          stream.appendReasoning(reasoningSeparator + text);
          reasoningSeparator = "";
        },
        onRetractAnswer: () => stream.truncateAnswer(stepStart),
      },
      signal,
    );
    if (step.toolCalls.length === 0 || final) return { toolSteps, toolsUsed };

    messages.push({
      role: "assistant",
      content: step.content || null,
      tool_calls: step.toolCalls.map((call) => ({
        id: call.id,
        type: "function" as const,
        function: { name: call.name, arguments: call.arguments },
      })),
    });
    // Calls of one step run one after another: tools are cheap, and the visitor sees
    // the activity lines in the order the model asked.
    for (const call of step.toolCalls) {
      signal.throwIfAborted();
      stream.toolActivity(registry.activityFor(call));
      const outcome = await registry.execute(call, { ...options.toolContext, signal });
      toolsUsed.push(call.name);
      messages.push({ role: "tool", tool_call_id: call.id, content: outcome.content });
    }
  }
}
