/**
 * The tool loop (SPEC §4): stream a model step; when it asks for tools, run them locally
 * and feed the results back; after `maxToolSteps` tool steps, ask once more without
 * tools for the final answer. Whether a step is a tool step is decided from the assembled
 * calls, not from `finish_reason`.
 *
 * Two more limits keep a prompt-injected model from holding a worker slot (issue 11,
 * finding 7): at most `maxToolCallsPerStep` calls of one step run (the rest are answered
 * "not run"), and the turn has a wall-clock deadline that cuts a running model step or tool.
 * Either one ends the tool work: the model is asked for its final answer without tools,
 * which must come within `finalAnswerMs`, or the turn fails with a `TurnDeadlineError`.
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
  /** Calls of one step that run; default `toolContext.config.maxToolCallsPerStep`. */
  maxToolCallsPerStep?: number;
  /** Wall-clock time for the tool work; default `toolContext.config.turnDeadlineMs`. */
  deadlineMs?: number;
  /** Time for the final answer once the deadline passed; default `toolContext.config.finalAnswerMs`. */
  finalAnswerMs?: number;
}

/** The turn ran out of time even for its final answer; `code` is stable for reporting. */
export class TurnDeadlineError extends Error {
  readonly code = "turn_deadline";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TurnDeadlineError";
  }
}

/** What the loop did. The answer itself is `stream.answer`. */
export interface ToolLoopResult {
  toolSteps: number;
  toolsUsed: string[];
  /** Which limit ended the tool work early, if any. */
  limit?: "tool_calls" | "deadline";
}

const FINAL_NUDGE =
  "You have used all the tool calls you may use for this question. Answer now with what you have.";
const DEADLINE_NUDGE =
  "The time for looking things up is over. Answer now, without tools, with what you have.";
const CALLS_NUDGE =
  "You asked for more tool calls at once than you may. Answer now, without tools, with what you have.";

function skipped(code: string, error: string): string {
  return JSON.stringify({ error, code });
}

/** A signal that aborts after `ms`, and a way to stop its timer (so no timer outlives the turn). */
function timer(ms: number): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const id = setTimeout(() => controller.abort(), ms);
  return { signal: controller.signal, clear: () => clearTimeout(id) };
}

/** Runs the loop until the model answers without asking for tools. */
export async function runToolLoop(options: ToolLoopOptions): Promise<ToolLoopResult> {
  const { config } = options.toolContext;
  const deadline = timer(options.deadlineMs ?? config.turnDeadlineMs);
  try {
    return await loop(options, deadline.signal);
  } finally {
    deadline.clear();
  }
}

async function loop(options: ToolLoopOptions, deadline: AbortSignal): Promise<ToolLoopResult> {
  const { model, registry, stream, signal } = options;
  const { config } = options.toolContext;
  const maxCalls = options.maxToolCallsPerStep ?? config.maxToolCallsPerStep;
  const finalAnswerMs = options.finalAnswerMs ?? config.finalAnswerMs;
  // Tool work stops at the turn's deadline as well as on cancel, lease loss and shutdown.
  const workSignal = AbortSignal.any([signal, deadline]);
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: "system", content: options.systemPrompt },
    ...options.conversation,
  ];
  const tools = registry.openAiTools();
  const toolsUsed = options.toolsUsed ?? [];
  let limit: ToolLoopResult["limit"];
  for (let toolSteps = 0;; toolSteps++) {
    const final = limit !== undefined || toolSteps >= options.maxToolSteps;
    if (final && toolSteps > 0) {
      const nudge = limit === "deadline"
        ? DEADLINE_NUDGE
        : limit === "tool_calls"
        ? CALLS_NUDGE
        : FINAL_NUDGE;
      messages.push({ role: "system", content: nudge });
    }
    // The final answer after a deadline gets its own short window; otherwise the turn's.
    const finalWindow = limit === "deadline" ? timer(finalAnswerMs) : null;
    const stepSignal = finalWindow ? AbortSignal.any([signal, finalWindow.signal]) : workSignal;
    const stepStart = stream.answer.length;
    // Each model call thinks afresh; a blank line keeps its reasoning apart from the last.
    let reasoningSeparator = stream.reasoning ? "\n\n" : "";
    let step: Awaited<ReturnType<StepModel["streamStep"]>>;
    try {
      step = await model.streamStep(
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
        stepSignal,
      );
    } catch (error) {
      finalWindow?.clear();
      if (signal.aborted) throw error;
      if (finalWindow?.signal.aborted) {
        throw new TurnDeadlineError(
          `The turn ran past its deadline, and the final answer took over ${finalAnswerMs} ms`,
          { cause: error },
        );
      }
      if (!deadline.aborted) throw error;
      // The deadline cut this step: what it said so far goes, and the model answers anew.
      stream.truncateAnswer(stepStart);
      limit = "deadline";
      continue;
    }
    finalWindow?.clear();
    if (step.toolCalls.length === 0 || final) {
      return { toolSteps, toolsUsed, ...(limit ? { limit } : {}) };
    }

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
    // the activity lines in the order the model asked. Every call gets a tool message,
    // run or not, as the chat-completions protocol requires.
    for (const [index, call] of step.toolCalls.entries()) {
      signal.throwIfAborted();
      let content: string;
      if (index >= maxCalls) {
        limit ??= "tool_calls";
        content = skipped(
          "too_many_tool_calls",
          `Not run: at most ${maxCalls} tool calls per step`,
        );
      } else if (deadline.aborted) {
        content = skipped("turn_deadline", "Not run: the time for tools is over");
      } else {
        stream.toolActivity(registry.activityFor(call));
        const outcome = await registry.execute(call, {
          ...options.toolContext,
          signal: workSignal,
        });
        toolsUsed.push(call.name);
        content = outcome.content;
      }
      messages.push({ role: "tool", tool_call_id: call.id, content });
    }
    signal.throwIfAborted();
    if (deadline.aborted) limit = "deadline";
  }
}
