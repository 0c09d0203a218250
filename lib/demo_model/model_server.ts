/**
 * A deterministic OpenAI-compatible chat-completions server (SPEC §7): the demo's model
 * and the tests' stand-in for vLLM/Ollama. It speaks the real streaming protocol — SSE
 * `data:` lines, an SSE comment, tool-call deltas split across many chunks with id and name
 * only in the first delta of each index, reasoning deltas, a usage-only final chunk and
 * `[DONE]` — and can be switched to fail: HTTP 500, 429 with Retry-After, a stall, or a
 * connection cut mid-stream. What it says is decided by `script.ts`.
 */
import { type ScriptedStep, scriptReply } from "./script.ts";

export { scriptReply };

export type Fault =
  | "none"
  | "error500"
  | "rate_limit"
  | "stall"
  | "cut"
  | "stall_after_first_token";

export interface ModelServerOptions {
  hostname?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Pause between streamed chunks; default 5 ms. */
  chunkDelayMs?: number;
  signal?: AbortSignal;
}

/** A completion request as received. */
export interface RecordedRequest {
  body: unknown;
  receivedAt: number;
  /** The client went away before the response ended. */
  aborted: boolean;
  completed: boolean;
}

export interface ModelServer {
  /** "http://127.0.0.1:PORT/v1" */
  url: string;
  port: number;
  /** The next `times` completion requests (default: all, until reset) get `fault`. */
  setFault(fault: Fault, times?: number): void;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const encoder = new TextEncoder();

/** Splits `text` into pieces of 3–7 characters (deterministically). */
function pieces(text: string): string[] {
  const out: string[] = [];
  for (let i = 0, n = 0; i < text.length; n++) {
    const size = 3 + (n % 5);
    out.push(text.slice(i, i + size));
    i += size;
  }
  return out;
}

/** Words with their following space: "a b" → ["a ", "b"]. */
function words(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/** The `delta` objects of one scripted step, in streaming order. */
export function stepDeltas(step: ScriptedStep): Record<string, unknown>[] {
  const deltas: Record<string, unknown>[] = [{ role: "assistant", content: "" }];
  const reasoning = words(step.reasoning);
  switch (step.reasoningStyle) {
    case "field":
      for (const w of reasoning) deltas.push({ reasoning_content: w });
      break;
    case "reasoning":
      for (const w of reasoning) deltas.push({ reasoning: w });
      break;
    case "tags":
      for (const p of pieces(`<think>${step.reasoning}</think>`)) deltas.push({ content: p });
      break;
    case "notag":
      for (const p of pieces(`${step.reasoning}</think>`)) deltas.push({ content: p });
      break;
    case "none":
      break;
  }
  for (const w of words(step.content)) deltas.push({ content: w });
  // Parallel calls interleave their argument pieces; id and name come once per call.
  const argPieces = step.toolCalls.map((call) => pieces(call.arguments));
  step.toolCalls.forEach((call, i) => {
    const index = step.ollamaIndexes ? 0 : i;
    deltas.push({
      tool_calls: [{
        index,
        id: call.id,
        type: "function",
        function: { name: call.name, arguments: "" },
      }],
    });
    if (step.ollamaIndexes) {
      for (const p of argPieces[i]!) {
        deltas.push({ tool_calls: [{ index, function: { arguments: p } }] });
      }
      argPieces[i] = [];
    }
  });
  for (let round = 0; argPieces.some((p) => round < p.length); round++) {
    argPieces.forEach((p, i) => {
      if (round < p.length) {
        deltas.push({ tool_calls: [{ index: i, function: { arguments: p[round] } }] });
      }
    });
  }
  return deltas;
}

function sse(value: unknown): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(value)}\n\n`);
}

/** Starts the server. */
export function startModelServer(options: ModelServerOptions = {}): ModelServer {
  const chunkDelayMs = options.chunkDelayMs ?? 5;
  const requests: RecordedRequest[] = [];
  let fault: Fault = "none";
  let faultTimes = Infinity;
  const abort = new AbortController();
  options.signal?.addEventListener("abort", () => abort.abort());
  let counter = 0;

  const takeFault = (): Fault => {
    if (fault === "none" || faultTimes <= 0) return "none";
    faultTimes--;
    return fault;
  };

  const complete = async (req: Request, info: Deno.ServeHandlerInfo): Promise<Response> => {
    let body: Record<string, unknown>;
    try {
      body = await req.json();
    } catch {
      return Response.json({ error: { message: "Invalid JSON" } }, { status: 400 });
    }
    const record: RecordedRequest = {
      body,
      receivedAt: Date.now(),
      aborted: false,
      completed: false,
    };
    requests.push(record);
    // Deno cancels the response body when the client goes away before it ends.
    const gone = new AbortController();
    const clientGone = gone.signal;
    const markGone = () => {
      if (!record.completed) record.aborted = true;
      gone.abort();
    };
    info.completed.catch(markGone);
    const active = takeFault();
    if (active === "error500") {
      return Response.json({ error: { message: "The model crashed", type: "server_error" } }, {
        status: 500,
      });
    }
    if (active === "rate_limit") {
      return Response.json({ error: { message: "Slow down", type: "rate_limit" } }, {
        status: 429,
        headers: { "retry-after": "1" },
      });
    }
    const step = scriptReply(
      (body.messages ?? []) as { role: string; content?: unknown }[],
      body.tools as { function?: { name?: string } }[] | undefined,
    );
    const id = `chatcmpl-${++counter}`;
    const model = String(body.model ?? "terra-demo");
    const created = Math.floor(Date.now() / 1000);
    const finishReason = step.toolCalls.length ? "tool_calls" : "stop";
    const usage = { prompt_tokens: 42, completion_tokens: Math.ceil(step.content.length / 4) + 1 };

    if (!body.stream) {
      record.completed = true;
      const content = step.reasoningStyle === "tags"
        ? `<think>${step.reasoning}</think>${step.content}`
        : step.content;
      return Response.json({
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{
          index: 0,
          finish_reason: finishReason,
          message: {
            role: "assistant",
            content,
            ...(step.toolCalls.length
              ? {
                tool_calls: step.toolCalls.map((c) => ({
                  id: c.id,
                  type: "function",
                  function: { name: c.name, arguments: c.arguments },
                })),
              }
              : {}),
          },
        }],
        usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
      });
    }

    const deltas = stepDeltas(step);
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)
      ?.include_usage;
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        const wait = (ms: number) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, ms);
            clientGone.addEventListener("abort", () => {
              clearTimeout(timer);
              resolve();
            }, { once: true });
          });
        try {
          if (active === "stall") {
            while (!clientGone.aborted && !abort.signal.aborted) await wait(1000);
            return;
          }
          controller.enqueue(encoder.encode(": keep-alive\n\n"));
          for (let i = 0; i < deltas.length; i++) {
            if (clientGone.aborted || abort.signal.aborted) return;
            controller.enqueue(sse(chunk(deltas[i]!)));
            if (active === "stall_after_first_token" && deltas[i]!.content) {
              while (!clientGone.aborted && !abort.signal.aborted) await wait(1000);
              return;
            }
            if (active === "cut" && i >= 3) {
              controller.error(new Error("connection cut by the demo model"));
              return;
            }
            if (chunkDelayMs > 0) await wait(chunkDelayMs);
          }
          controller.enqueue(sse(chunk({}, finishReason)));
          if (includeUsage) {
            controller.enqueue(sse({
              id,
              object: "chat.completion.chunk",
              created,
              model,
              choices: [],
              usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
            }));
          }
          controller.enqueue(encoder.encode("data: [DONE]\n\n"));
          record.completed = true;
          controller.close();
        } catch {
          // The client went away mid-stream.
        }
      },
      cancel: markGone,
    });
    return new Response(stream, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  };

  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    signal: abort.signal,
    onListen() {},
  }, async (req, info) => {
    const path = new URL(req.url).pathname;
    if (req.method === "POST" && path === "/v1/chat/completions") return await complete(req, info);
    if (req.method === "GET" && path === "/health") return Response.json({ status: "ok" });
    if (req.method === "GET" && path === "/v1/models") {
      return Response.json({ object: "list", data: [{ id: "terra-demo", object: "model" }] });
    }
    if (req.method === "POST" && path === "/control") {
      const control = await req.json().catch(() => ({})) as { fault?: Fault; times?: number };
      fault = control.fault ?? "none";
      faultTimes = control.times ?? Infinity;
      return Response.json({ fault, times: faultTimes });
    }
    return Response.json({ error: { message: "Not found" } }, { status: 404 });
  });
  const port = server.addr.port;
  return {
    url: `http://${options.hostname ?? "127.0.0.1"}:${port}/v1`,
    port,
    requests,
    setFault(next, times = Infinity) {
      fault = next;
      faultTimes = times;
    },
    async close() {
      abort.abort();
      await server.finished;
    },
  };
}
