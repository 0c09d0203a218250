/**
 * The worker's tools (SPEC §4): each has a stable name, a description, a zod schema that
 * both validates arguments and produces the JSON schema sent to the model, a timeout and a
 * result size cap. Model output is untrusted: arguments are parsed and validated, and every
 * failure goes back to the model as JSON `{error, code}` — a tool never throws to the loop.
 */
import type OpenAI from "openai";
import { z } from "zod";
import type { Logger } from "../log.ts";
import type { SourceKind } from "../protocol.ts";
import type { WorkerConfig } from "./config.ts";
import type { SourceList } from "./source_list.ts";

/** What a tool run may use. */
export interface ToolContext {
  config: WorkerConfig;
  chatId: string;
  log: Logger;
  /** Aborts on cancel, lease loss or the tool's own timeout. */
  signal: AbortSignal;
  /** Collects the pages the turn's tools returned, for the reply's sources (issue 16). */
  sources?: SourceList;
}

/** A page a tool returned, before `SourceList` checks it. */
export interface SourceHint {
  url: string;
  title?: string;
  kind: SourceKind;
}

/** A failure a tool reports to the model with a stable code. */
export class ToolError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ToolError";
    this.code = code;
  }
}

/** One tool. `activity` is the plain-words line visitors see while it runs. */
export interface Tool<S extends z.ZodType = z.ZodType, R = unknown> {
  name: string;
  description: string;
  schema: S;
  /** Default 15 s. */
  timeoutMs?: number;
  /** Default 12 000 characters of JSON. */
  maxResultChars?: number;
  activity(args: z.output<S>): string;
  run(args: z.output<S>, context: ToolContext): Promise<R>;
  /** The pages a successful result came from (none by default). */
  sources?(result: R, args: z.output<S>): SourceHint[];
}

/** The outcome of one call, ready to go back to the model as a `tool` message. */
export interface ToolOutcome {
  ok: boolean;
  /** JSON text. */
  content: string;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_MAX_RESULT_CHARS = 12_000;

/** Defines a tool with its argument types inferred from the schema. */
export function defineTool<S extends z.ZodType, R>(tool: Tool<S, R>): Tool {
  return tool as unknown as Tool;
}

function errorContent(code: string, error: string): string {
  return JSON.stringify({ error, code });
}

export class ToolRegistry {
  #tools = new Map<string, Tool>();

  constructor(tools: Tool[] = []) {
    for (const tool of tools) this.register(tool);
  }

  /** Adds a tool; names are unique. */
  register(tool: Tool): void {
    if (this.#tools.has(tool.name)) {
      throw new RangeError(`Tool "${tool.name}" is already registered`);
    }
    this.#tools.set(tool.name, tool);
  }

  /** Tool names, in registration order. */
  names(): string[] {
    return [...this.#tools.keys()];
  }

  /** The tool list for the chat-completions request. */
  openAiTools(): OpenAI.ChatCompletionTool[] {
    return [...this.#tools.values()].map((tool) => ({
      type: "function",
      function: {
        name: tool.name,
        description: tool.description,
        parameters: z.toJSONSchema(tool.schema, { io: "input" }) as Record<string, unknown>,
      },
    }));
  }

  /** The plain-words line for a call about to run ("Fetching https://…"). */
  activityFor(call: { name: string; arguments: string }): string {
    const tool = this.#tools.get(call.name);
    if (!tool) return `Calling ${call.name}…`;
    try {
      const parsed = tool.schema.safeParse(call.arguments.trim() ? JSON.parse(call.arguments) : {});
      return parsed.success ? tool.activity(parsed.data) : `Calling ${call.name}…`;
    } catch {
      return `Calling ${call.name}…`;
    }
  }

  /** Runs one call from the model; never throws. */
  async execute(
    call: { name: string; arguments: string },
    context: ToolContext,
  ): Promise<ToolOutcome> {
    const tool = this.#tools.get(call.name);
    if (!tool) {
      return {
        ok: false,
        content: errorContent("unknown_tool", `There is no tool named "${call.name}"`),
      };
    }
    let raw: unknown;
    try {
      raw = call.arguments.trim() ? JSON.parse(call.arguments) : {};
    } catch {
      return {
        ok: false,
        content: errorContent("bad_arguments", "The arguments are not valid JSON"),
      };
    }
    const parsed = tool.schema.safeParse(raw);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((i) =>
        `${i.path.join(".") || "arguments"}: ${i.message}`
      )
        .join("; ");
      return {
        ok: false,
        content: errorContent("bad_arguments", `Invalid arguments: ${detail}`),
      };
    }
    const timeout = AbortSignal.timeout(tool.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const signal = AbortSignal.any([context.signal, timeout]);
    try {
      const result = await raceAbort(tool.run(parsed.data, { ...context, signal }), signal);
      if (tool.sources && context.sources) {
        try {
          context.sources.add(tool.sources(result, parsed.data));
        } catch (error) {
          // Sources are a courtesy: a result of an odd shape must not fail the call.
          context.log.debug("tool sources skipped", { tool: tool.name, error });
        }
      }
      return { ok: true, content: capped(result, tool.maxResultChars) };
    } catch (error) {
      const [code, message] = describe(error, timeout.aborted);
      context.log.info("tool failed", { tool: tool.name, chatId: context.chatId, code });
      return { ok: false, content: errorContent(code, message) };
    }
  }
}

/** JSON of `result`, or a truncated excerpt marked as such when over the cap. */
function capped(result: unknown, maxChars = DEFAULT_MAX_RESULT_CHARS): string {
  const text = JSON.stringify(result ?? null);
  if (text.length <= maxChars) return text;
  return JSON.stringify({ truncated: true, excerpt: text.slice(0, maxChars) });
}

function describe(error: unknown, timedOut: boolean): [string, string] {
  if (timedOut) return ["timeout", "The tool took too long and was stopped"];
  if (error instanceof ToolError) return [error.code, error.message];
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    return ["permission_denied", "The worker's sandbox does not allow this"];
  }
  if (error instanceof DOMException && error.name === "AbortError") {
    return ["aborted", "The request was stopped"];
  }
  return ["tool_failed", error instanceof Error ? error.message : String(error)];
}

/** Rejects as soon as `signal` aborts, even if `promise` ignores the signal. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
