/**
 * A deterministic OpenAI-compatible chat-completions server (SPEC §7): the demo's model
 * and the tests' stand-in for vLLM/Ollama. It speaks the real streaming protocol — SSE
 * `data:` lines after a `: keep-alive` comment, answers a word or less per chunk, tool-call
 * deltas with id and name only in the first delta of each index and the arguments split
 * into 3–7 character pieces (parallel calls interleaved), reasoning deltas, a usage-only
 * final chunk and `[DONE]` — and can be switched to fail: HTTP 500, 429 with Retry-After,
 * a stall (headers, then silence until the client leaves), a stall after the first token,
 * or a connection cut mid-stream (no `[DONE]`). A client leaving early is recorded.
 *
 * What it says is decided by `script.ts`; its directives are documented there.
 *
 * Routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`, and
 * `POST /control` `{fault, times?}` so a test can switch faults in another process.
 */
import { type ScriptedStep, scriptReply, stepDeltas, stepMessage } from "./script.ts";

export { type ScriptedStep, scriptReply, stepDeltas };

/** A failure the server can be switched to. */
export type Fault =
  | "none"
  | "error500"
  | "rate_limit"
  | "stall"
  | "cut"
  | "stall_after_first_token";

/** Options of `startModelServer()`. */
export interface ModelServerOptions {
  /** @default {"127.0.0.1"} */
  hostname?: string;
  /** 0 picks a free port. @default {0} */
  port?: number;
  /** Pause between streamed chunks. @default {5} */
  chunkDelayMs?: number;
  /** Aborting it shuts the server down. */
  signal?: AbortSignal;
  /** Called with each response frame as it is handed to the connection (the benchmark times the model's emits with it). */
  onFrame?: (frame: Uint8Array) => void;
}

/** A completion request as received. */
export interface RecordedRequest {
  body: unknown;
  receivedAt: number;
  /** The client went away before the response ended. */
  aborted: boolean;
  completed: boolean;
}

/** A running model server. */
export interface ModelServer {
  /** "http://127.0.0.1:PORT/v1" */
  url: string;
  port: number;
  /** The next `times` completion requests (default: all, until reset) get `fault`. */
  setFault(fault: Fault, times?: number): void;
  /** Every `POST /v1/chat/completions`, in order. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const FAULTS = new Set<string>([
  "none",
  "error500",
  "rate_limit",
  "stall",
  "cut",
  "stall_after_first_token",
]);
/** A `cut` stream breaks after this many frames (or just before its end, if shorter). */
const CUT_AFTER_FRAMES = 8;
const encoder = new TextEncoder();

function sse(value: unknown): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(value)}\n\n`);
}

/** Resolves after `ms` (never when Infinity), or as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Starts the server on 127.0.0.1 (by default) and a free port. */
export function startModelServer(options: ModelServerOptions = {}): ModelServer {
  const hostname = options.hostname ?? "127.0.0.1";
  const chunkDelayMs = options.chunkDelayMs ?? 5;
  const requests: RecordedRequest[] = [];
  const shutdown = new AbortController();
  options.signal?.addEventListener("abort", () => shutdown.abort(), { once: true });
  let fault: Fault = "none";
  let faultTimes = Infinity;
  let counter = 0;

  const setFault = (next: Fault, times = Infinity) => {
    fault = next;
    faultTimes = times;
  };
  const takeFault = (): Fault => {
    if (fault === "none" || faultTimes <= 0) return "none";
    faultTimes--;
    return fault;
  };

  const complete = async (req: Request): Promise<Response> => {
    let body: Record<string, unknown>;
    try {
      body = await req.json();
    } catch {
      return Response.json({ error: { message: "Invalid JSON body" } }, { status: 400 });
    }
    const record: RecordedRequest = {
      body,
      receivedAt: Date.now(),
      aborted: false,
      completed: false,
    };
    requests.push(record);
    const active = takeFault();
    if (active === "error500" || active === "rate_limit") {
      record.completed = true;
      return active === "error500"
        ? Response.json({ error: { message: "The model crashed", type: "server_error" } }, {
          status: 500,
        })
        : Response.json({ error: { message: "Slow down", type: "rate_limit_error" } }, {
          status: 429,
          headers: { "retry-after": "1" },
        });
    }
    const step = scriptReply(
      Array.isArray(body.messages) ? body.messages : [],
      Array.isArray(body.tools) ? body.tools : undefined,
    );
    const id = `chatcmpl-demo-${++counter}`;
    const model = typeof body.model === "string" ? body.model : "terra-demo";
    const created = Math.floor(Date.now() / 1000);
    const finishReason = step.toolCalls.length ? "tool_calls" : "stop";
    const promptTokens = Math.ceil(JSON.stringify(body.messages ?? []).length / 4);
    const completionTokens = Math.ceil((step.reasoning.length + step.content.length) / 4) +
      step.toolCalls.length * 8;
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    };
    const base = { id, created, model };
    const frames: Uint8Array[] = [];
    if (body.stream === true) {
      frames.push(encoder.encode(": keep-alive\n\n"));
      const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
        ...base,
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
      for (const delta of stepDeltas(step)) frames.push(sse(chunk(delta, null)));
      frames.push(sse(chunk({}, finishReason)));
      const options = body.stream_options as { include_usage?: boolean } | undefined;
      if (options?.include_usage) {
        frames.push(sse({ ...base, object: "chat.completion.chunk", choices: [], usage }));
      }
      frames.push(encoder.encode("data: [DONE]\n\n"));
    } else {
      const message = stepMessage(step);
      const json = JSON.stringify({
        ...base,
        object: "chat.completion",
        choices: [{ index: 0, message, finish_reason: finishReason, logprobs: null }],
        usage,
      });
      // Several frames, so that `cut` and `stall_after_first_token` have a middle to act in.
      for (const p of json.match(/[\s\S]{1,64}/g) ?? []) frames.push(encoder.encode(p));
    }
    return new Response(respond(frames, active, record, body.stream === true), {
      headers: {
        "content-type": body.stream === true ? "text/event-stream" : "application/json",
        "cache-control": "no-cache",
      },
    });
  };

  /**
   * The response body. A client going away shows as the body being cancelled: Deno 2.x's
   * `request.signal` also aborts after successful responses (its legacy behaviour, which
   * logs a warning), so it cannot tell a disconnect from a completed answer.
   */
  const respond = (
    frames: Uint8Array[],
    active: Fault,
    record: RecordedRequest,
    sseMode: boolean,
  ) => {
    const gone = new AbortController();
    const stop = AbortSignal.any([gone.signal, shutdown.signal]);
    return new ReadableStream<Uint8Array>({
      async start(controller) {
        try {
          if (active === "stall") return await pause(Infinity, stop);
          for (let i = 0; i < frames.length && !stop.aborted; i++) {
            controller.enqueue(frames[i]!);
            options.onFrame?.(frames[i]!);
            const firstToken = sseMode ? i >= 2 : i >= 1; // comment, role delta, then a token
            if (active === "stall_after_first_token" && firstToken) {
              return await pause(Infinity, stop);
            }
            if (active === "cut" && i + 1 >= Math.min(CUT_AFTER_FRAMES, frames.length - 2)) {
              // Erroring the body makes Deno drop the connection mid-response: the client
              // sees a broken stream without `[DONE]`, as when a proxy or the model dies.
              // Erroring discards queued chunks, so first let the sent ones drain.
              for (let n = 0; n < 100 && (controller.desiredSize ?? 1) < 1; n++) {
                await pause(5, stop);
              }
              await pause(20, stop);
              const cut = new Error('Demo model cut the connection (fault "cut")');
              cut.stack = cut.message; // Deno logs it; one line says enough
              controller.error(cut);
              return;
            }
            if (chunkDelayMs > 0 && sseMode) await pause(chunkDelayMs, stop);
          }
          if (stop.aborted) return;
          record.completed = true;
          controller.close();
        } catch {
          // The client went away mid-stream: enqueue on a cancelled stream throws.
        } finally {
          // Server shutdown: end what is still open so `close()` does not wait for it.
          if (shutdown.signal.aborted && !gone.signal.aborted && !record.completed) {
            try {
              controller.close();
            } catch { /* already errored or closed */ }
          }
        }
      },
      cancel() {
        if (!record.completed) record.aborted = true;
        gone.abort();
      },
    });
  };

  const server = Deno.serve({
    hostname,
    port: options.port ?? 0,
    signal: shutdown.signal,
    onListen() {},
  }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "POST" && path === "/v1/chat/completions") return await complete(req);
    if (req.method === "GET" && path === "/health") return Response.json({ status: "ok" });
    if (req.method === "GET" && path === "/v1/models") {
      return Response.json({
        object: "list",
        data: [{ id: "terra-demo", object: "model", created: 0, owned_by: "terrarium" }],
      });
    }
    if (req.method === "POST" && path === "/control") {
      const control = await req.json().catch(() => null) as
        | { fault?: unknown; times?: unknown }
        | null;
      const next = control?.fault ?? "none";
      const times = control?.times ?? Infinity;
      if (typeof next !== "string" || !FAULTS.has(next)) {
        const message = `Unknown fault "${String(next)}"`;
        return Response.json({ error: { message } }, { status: 400 });
      }
      if (typeof times !== "number" || !(times >= 0)) {
        const message = `Cannot set fault "${next}": times is "${String(times)}"`;
        return Response.json({ error: { message } }, { status: 400 });
      }
      setFault(next as Fault, times);
      return Response.json({ fault, times: Number.isFinite(times) ? times : null });
    }
    return Response.json({ error: { message: `No route for ${req.method} ${path}` } }, {
      status: 404,
    });
  });
  const port = server.addr.port;
  return {
    url: `http://${hostname}:${port}/v1`,
    port,
    requests,
    setFault,
    async close() {
      shutdown.abort();
      await server.finished;
    },
  };
}
