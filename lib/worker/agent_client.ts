/**
 * The worker's model client on the `openai` SDK, for any OpenAI-compatible server
 * (terrarium-agent, vLLM, Ollama, llama.cpp, OpenAI). One call streams one step of the
 * tool loop: answer and reasoning deltas go to callbacks as they arrive, tool calls are
 * assembled from their deltas. Failures before the first delta are retried with backoff
 * (the visitor has seen nothing yet); after it, never, since a retry would repeat or
 * contradict what was shown. A circuit breaker stops hammering a model that keeps failing,
 * and two timeouts bound a request: in total, and between deltas.
 */
import OpenAI from "openai";
import { backoffDelay } from "../backoff.ts";
import { delay } from "../delay.ts";
import { AgentError, classify } from "./agent_error.ts";
import { CircuitBreaker } from "./circuit_breaker.ts";
import { ThinkSplitter } from "./think_splitter.ts";
import { type AssembledToolCall, ToolCallAssembler } from "./tool_call_assembler.ts";

export { AgentError, type AgentErrorKind } from "./agent_error.ts";
export type { AssembledToolCall };

/** How to reach the model. */
export interface AgentClientConfig {
  /** The API base, ending in "/v1". */
  baseUrl: string;
  /** Bearer key; "" for servers without one. */
  apiKey: string;
  model: string;
  /** Bound on a whole request, first byte to last. */
  timeoutMs: number;
  /** Bound on the silence between two deltas (and before the first). */
  idleTimeoutMs: number;
  /** Retries before the first delta; 0 disables them. */
  maxRetries: number;
}

/** Where a step's output goes while it streams. */
export interface StepCallbacks {
  /** Answer text deltas, in order. */
  onAnswer(text: string): void;
  /** Reasoning deltas (`reasoning_content`, `reasoning`, or `<think>` content). */
  onReasoning(text: string): void;
  /** A late `</think>`: the answer so far was reasoning; `onReasoning` receives it next. */
  onRetractAnswer?(): void;
}

/** One finished step. */
export interface StepResult {
  content: string;
  reasoning: string;
  toolCalls: AssembledToolCall[];
  finishReason: string | null;
  usage: { promptTokens: number; completionTokens: number } | null;
}

const MAX_RETRY_WAIT_MS = 10_000;
const BACKOFF_BASE_MS = 500;

/** A callback of the caller threw: rethrown as it is, not classified as a model failure. */
class CallbackFailure {
  constructor(readonly error: unknown) {}
}

type Delta = {
  content?: string | null;
  reasoning_content?: string | null;
  reasoning?: string | null;
  tool_calls?: Parameters<ToolCallAssembler["push"]>[0][];
};

/** Streams model steps with retries, timeouts and a circuit breaker. */
export class AgentClient {
  #config: AgentClientConfig;
  #client: OpenAI;
  #breaker: CircuitBreaker;
  #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(
    config: AgentClientConfig,
    options: {
      breaker?: CircuitBreaker | undefined;
      sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
    } = {},
  ) {
    this.#config = config;
    // Retries are ours (only before the first delta); the SDK must not add its own.
    this.#client = new OpenAI({
      baseURL: config.baseUrl,
      apiKey: config.apiKey || "not-needed",
      maxRetries: 0,
      timeout: config.timeoutMs,
    });
    this.#breaker = options.breaker ?? new CircuitBreaker();
    // Rejects as soon as `signal` aborts, so a stopped turn does not wait out a retry.
    this.#sleep = options.sleep ?? ((ms, signal) => delay(ms, { signal, rejectOnAbort: true }));
  }

  /** Streams one step; retries only before the first delta; throws `AgentError`. */
  async streamStep(
    messages: OpenAI.ChatCompletionMessageParam[],
    tools: OpenAI.ChatCompletionTool[] | undefined,
    callbacks: StepCallbacks,
    signal: AbortSignal,
  ): Promise<StepResult> {
    if (signal.aborted) throw new AgentError("aborted", "The request was stopped");
    // One breaker decision per call: retries belong to the call, they are not new calls.
    if (!this.#breaker.tryAcquire()) {
      const seconds = Math.ceil(this.#breaker.retryInMs() / 1000);
      const message = `The model failed repeatedly; calls resume in ${seconds} s`;
      throw new AgentError("circuit_open", message);
    }
    for (let attempt = 0;; attempt++) {
      const progress = { started: false };
      try {
        const result = await this.#attempt(messages, tools, callbacks, signal, progress);
        this.#breaker.success();
        return result;
      } catch (error) {
        if (error instanceof CallbackFailure) {
          this.#breaker.release();
          throw error.error;
        }
        const failure = error as AgentError;
        if (failure.kind === "aborted") {
          // Stopped by the caller: proof of life if deltas came, otherwise no verdict.
          if (progress.started) this.#breaker.success();
          else this.#breaker.release();
          throw failure;
        }
        if (progress.started || !failure.retryable || attempt >= this.#config.maxRetries) {
          // A 4xx means the server is up and judged the request: no reason to open.
          const refused = failure.status !== undefined && failure.status < 500 &&
            failure.kind !== "rate_limited";
          if (refused) this.#breaker.success();
          else this.#breaker.failure();
          throw failure;
        }
        const backoff = backoffDelay(attempt + 1, {
          baseMs: BACKOFF_BASE_MS,
          capMs: MAX_RETRY_WAIT_MS,
        });
        const wait = Math.min(failure.retryAfterMs ?? backoff, MAX_RETRY_WAIT_MS);
        try {
          await this.#sleep(wait, signal);
        } catch (reason) {
          this.#breaker.release();
          throw new AgentError("aborted", "The request was stopped", { cause: reason });
        }
      }
    }
  }

  /** A tiny non-streamed completion: is the LLM answering? */
  async probe(signal?: AbortSignal): Promise<{ ok: boolean; latencyMs: number; detail: string }> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    try {
      await this.#client.chat.completions.create({
        model: this.#config.model,
        messages: [{ role: "user", content: "ping" }],
        max_tokens: 1,
        stream: false,
      }, signal ? { signal } : {});
      const latencyMs = elapsed();
      return { ok: true, latencyMs, detail: `Answered in ${latencyMs} ms` };
    } catch (error) {
      return { ok: false, latencyMs: elapsed(), detail: classify(error, { signal }).message };
    }
  }

  async #attempt(
    messages: OpenAI.ChatCompletionMessageParam[],
    tools: OpenAI.ChatCompletionTool[] | undefined,
    callbacks: StepCallbacks,
    signal: AbortSignal,
    progress: { started: boolean },
  ): Promise<StepResult> {
    const { timeoutMs, idleTimeoutMs } = this.#config;
    const idle = new AbortController();
    const total = new AbortController();
    const totalTimer = setTimeout(() => total.abort(), timeoutMs);
    let idleTimer = setTimeout(() => idle.abort(), idleTimeoutMs);
    const requestSignal = AbortSignal.any([signal, idle.signal, total.signal]);
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
      try {
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
      } catch (error) {
        throw new CallbackFailure(error);
      }
    };
    let opened = false;
    try {
      const stream = await this.#client.chat.completions.create({
        model: this.#config.model,
        messages,
        stream: true,
        stream_options: { include_usage: true },
        ...(tools?.length ? { tools } : {}),
      }, { signal: requestSignal });
      opened = true;
      for await (const chunk of stream) {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => idle.abort(), idleTimeoutMs);
        if (chunk.usage) {
          const { prompt_tokens, completion_tokens } = chunk.usage;
          result.usage = { promptTokens: prompt_tokens, completionTokens: completion_tokens };
        }
        // `choices: []` is the usage-only final chunk.
        const choice = chunk.choices?.find((c) => c.index === 0) ?? chunk.choices?.[0];
        if (!choice) continue;
        if (choice.finish_reason) result.finishReason = choice.finish_reason;
        const delta = (choice.delta ?? {}) as Delta;
        // Servers in transition send both names for the same text: take one.
        const reasoning = delta.reasoning_content || delta.reasoning;
        if (reasoning || delta.content || delta.tool_calls?.length) progress.started = true;
        if (reasoning) emit({ answer: "", reasoning, retractAnswer: false });
        if (delta.content) emit(splitter.push(delta.content));
        for (const call of delta.tool_calls ?? []) assembler.push(call);
      }
      // The SDK ends the iteration quietly when its signal aborts: that is no answer.
      if (requestSignal.aborted) throw new Error("Request aborted");
      // Every server sends a finish_reason; a stream ending without one was cut off.
      if (result.finishReason === null) throw new Error("The stream ended without a finish_reason");
      emit(splitter.end());
      result.toolCalls = assembler.calls();
      return result;
    } catch (error) {
      if (error instanceof CallbackFailure) throw error;
      throw classify(error, {
        signal,
        idle: idle.signal.aborted,
        total: total.signal.aborted,
        opened,
        started: progress.started,
        timeouts: this.#config,
      });
    } finally {
      clearTimeout(idleTimer);
      clearTimeout(totalTimer);
    }
  }
}
