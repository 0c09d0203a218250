/**
 * The worker's model client on the `openai` SDK, for any OpenAI-compatible server
 * (terrarium-agent, vLLM, Ollama, llama.cpp, OpenAI). One call streams one step of the
 * tool loop: answer and reasoning deltas go to callbacks as they arrive, tool calls are
 * assembled from their deltas. Failures before the first delta are retried with backoff
 * (the step has shown nothing yet); after it, never. A circuit breaker stops hammering a
 * model that keeps failing, and two timeouts bound a request: in total and between deltas.
 */
import OpenAI from "openai";
import { CircuitBreaker } from "./circuit_breaker.ts";
import { ThinkSplitter } from "./think_splitter.ts";
import { type AssembledToolCall, ToolCallAssembler } from "./tool_call_assembler.ts";

export type { AssembledToolCall };

export interface AgentClientConfig {
  /** "…/v1" */
  baseUrl: string;
  apiKey: string;
  model: string;
  timeoutMs: number;
  idleTimeoutMs: number;
  maxRetries: number;
}

export interface StepCallbacks {
  onAnswer(text: string): void;
  onReasoning(text: string): void;
  /** Answer text already passed on turned out to be reasoning (a late `</think>`). */
  onRetractAnswer?(): void;
}

export interface StepResult {
  content: string;
  reasoning: string;
  toolCalls: AssembledToolCall[];
  finishReason: string | null;
  usage: { promptTokens: number; completionTokens: number } | null;
}

export type AgentErrorKind =
  | "unavailable"
  | "rate_limited"
  | "timeout"
  | "stream_cut"
  | "circuit_open"
  | "bad_response"
  | "aborted";

/** A model call that failed, classified for retries and for the visitor's notice. */
export class AgentError extends Error {
  readonly kind: AgentErrorKind;
  readonly retryable: boolean;
  /** Server-requested wait (429 Retry-After), in ms. */
  readonly retryAfterMs: number | undefined;
  constructor(
    kind: AgentErrorKind,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(message, { cause: options?.cause });
    this.name = "AgentError";
    this.kind = kind;
    this.retryable = kind === "unavailable" || kind === "rate_limited" || kind === "timeout";
    this.retryAfterMs = options?.retryAfterMs;
  }
}

const MAX_RETRY_AFTER_MS = 10_000;
const BACKOFF_BASE_MS = 250;

/** Sleeps `ms`, waking early (and rejecting) when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

type Delta = {
  content?: string | null;
  reasoning_content?: string | null;
  reasoning?: string | null;
  tool_calls?: unknown[];
};

export class AgentClient {
  #config: AgentClientConfig;
  #client: OpenAI;
  #breaker: CircuitBreaker;
  #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(
    config: AgentClientConfig,
    options: {
      breaker?: CircuitBreaker;
      sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
    } = {},
  ) {
    this.#config = config;
    // Retries are ours (only before the first token); the SDK must not add its own.
    this.#client = new OpenAI({
      baseURL: config.baseUrl,
      apiKey: config.apiKey || "not-needed",
      maxRetries: 0,
      timeout: config.timeoutMs,
    });
    this.#breaker = options.breaker ?? new CircuitBreaker();
    this.#sleep = options.sleep ?? sleep;
  }

  /** Streams one step; throws `AgentError`. */
  async streamStep(
    messages: OpenAI.ChatCompletionMessageParam[],
    tools: OpenAI.ChatCompletionTool[] | undefined,
    callbacks: StepCallbacks,
    signal: AbortSignal,
  ): Promise<StepResult> {
    // One breaker decision per call: retries belong to the call, they are not new calls.
    if (!this.#breaker.tryAcquire()) {
      throw new AgentError(
        "circuit_open",
        `The model failed repeatedly; calls resume in ${
          Math.ceil(this.#breaker.retryInMs() / 1000)
        } s`,
      );
    }
    for (let attempt = 0;; attempt++) {
      const progress = { started: false };
      try {
        const result = await this.#attempt(messages, tools, callbacks, signal, progress);
        this.#breaker.success();
        return result;
      } catch (raw) {
        const error = classify(raw, signal);
        if (error.kind === "aborted") {
          this.#breaker.success(); // the visitor stopped it; the model is fine
          throw error;
        }
        if (progress.started || !error.retryable || attempt >= this.#config.maxRetries) {
          this.#breaker.failure();
          throw error;
        }
        const backoff = BACKOFF_BASE_MS * 2 ** attempt * (0.5 + Math.random());
        await this.#sleep(Math.min(error.retryAfterMs ?? backoff, MAX_RETRY_AFTER_MS), signal)
          .catch((reason) => {
            this.#breaker.success(); // stopped while waiting to retry: not the model's fault
            throw classify(reason, signal);
          });
      }
    }
  }

  /** A tiny non-streamed completion: is the LLM answering? */
  async probe(signal?: AbortSignal): Promise<{ ok: boolean; latencyMs: number; detail: string }> {
    const started = performance.now();
    try {
      await this.#client.chat.completions.create(
        { model: this.#config.model, messages: [{ role: "user", content: "ping" }], max_tokens: 1 },
        { signal },
      );
      const latencyMs = Math.round(performance.now() - started);
      return { ok: true, latencyMs, detail: `Answered in ${latencyMs} ms` };
    } catch (raw) {
      const error = classify(raw, signal);
      return {
        ok: false,
        latencyMs: Math.round(performance.now() - started),
        detail: error.message,
      };
    }
  }

  async #attempt(
    messages: OpenAI.ChatCompletionMessageParam[],
    tools: OpenAI.ChatCompletionTool[] | undefined,
    callbacks: StepCallbacks,
    signal: AbortSignal,
    progress: { started: boolean },
  ): Promise<StepResult> {
    const idle = new AbortController();
    let idleTimer = setTimeout(() => idle.abort("idle"), this.#config.idleTimeoutMs);
    const total = AbortSignal.timeout(this.#config.timeoutMs);
    const requestSignal = AbortSignal.any([signal, idle.signal, total]);
    const splitter = new ThinkSplitter();
    const assembler = new ToolCallAssembler();
    const result: StepResult = {
      content: "",
      reasoning: "",
      toolCalls: [],
      finishReason: null,
      usage: null,
    };
    const emit = (part: { answer: string; reasoning: string; retractAnswer: boolean }) => {
      if (part.retractAnswer) {
        result.content = "";
        callbacks.onRetractAnswer?.();
      }
      if (part.reasoning) {
        result.reasoning += part.reasoning;
        callbacks.onReasoning(part.reasoning);
      }
      if (part.answer) {
        result.content += part.answer;
        callbacks.onAnswer(part.answer);
      }
    };
    try {
      const stream = await this.#client.chat.completions.create({
        model: this.#config.model,
        messages,
        stream: true,
        stream_options: { include_usage: true },
        ...(tools?.length ? { tools } : {}),
      }, { signal: requestSignal });
      for await (const chunk of stream) {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => idle.abort("idle"), this.#config.idleTimeoutMs);
        if (chunk.usage) {
          result.usage = {
            promptTokens: chunk.usage.prompt_tokens,
            completionTokens: chunk.usage.completion_tokens,
          };
        }
        const choice = chunk.choices?.[0];
        if (!choice) continue; // the usage-only final chunk
        if (choice.finish_reason) result.finishReason = choice.finish_reason;
        const delta = (choice.delta ?? {}) as Delta;
        const reasoning = delta.reasoning_content ?? delta.reasoning;
        if (reasoning) {
          progress.started = true;
          emit({ answer: "", reasoning, retractAnswer: false });
        }
        if (delta.content) {
          progress.started = true;
          emit(splitter.push(delta.content));
        }
        for (const call of delta.tool_calls ?? []) {
          progress.started = true;
          assembler.push(call as Parameters<ToolCallAssembler["push"]>[0]);
        }
      }
      // The SDK ends the iteration quietly when its signal aborts: that is no answer.
      if (requestSignal.aborted) throw requestSignal.reason ?? new Error("Request aborted");
      emit(splitter.end());
      result.toolCalls = assembler.calls();
      return result;
    } catch (error) {
      if (idle.signal.aborted && !signal.aborted) {
        throw new AgentError("timeout", "The model stopped sending for too long", { cause: error });
      }
      if (total.aborted && !signal.aborted) {
        throw new AgentError("timeout", "The model took too long to answer", { cause: error });
      }
      if (progress.started && !signal.aborted && !(error instanceof OpenAI.APIError)) {
        throw new AgentError("stream_cut", "The model's stream broke off", { cause: error });
      }
      throw error;
    } finally {
      clearTimeout(idleTimer);
    }
  }
}

/** Maps whatever a call threw to an `AgentError`. */
function classify(error: unknown, signal: AbortSignal | undefined): AgentError {
  if (error instanceof AgentError) return error;
  if (signal?.aborted) {
    return new AgentError("aborted", "The request was stopped", { cause: error });
  }
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new AgentError("timeout", "The model took too long to answer", { cause: error });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new AgentError("unavailable", "The model API cannot be reached", { cause: error });
  }
  if (error instanceof OpenAI.APIError) {
    if (error.status === 429) {
      const seconds = Number(error.headers?.get?.("retry-after"));
      return new AgentError("rate_limited", "The model API is rate limiting", {
        cause: error,
        retryAfterMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined,
      });
    }
    if (error.status !== undefined && error.status >= 500) {
      return new AgentError("unavailable", `The model API failed (${error.status})`, {
        cause: error,
      });
    }
    return new AgentError("bad_response", `The model API refused the request (${error.status})`, {
      cause: error,
    });
  }
  return new AgentError(
    "bad_response",
    `The model's answer could not be read: ${(error as Error)?.message}`,
    {
      cause: error,
    },
  );
}
