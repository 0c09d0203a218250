import { type ModelServer, startModelServer } from "../demo_model/model_server.ts";
import { z } from "zod";
import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { Logger } from "../log.ts";
import { AgentClient } from "./agent_client.ts";
import { AnswerStream } from "./answer_stream.ts";
import { parseWorkerConfig } from "./config.ts";
import { runToolLoop, type ToolLoopOptions, TurnDeadlineError } from "./tool_loop.ts";
import { defineTool, type Tool, ToolRegistry } from "./tool_registry.ts";
import { getProfile } from "./tools/get_profile.ts";

const config = parseWorkerConfig({
  API_BASE_URL: "http://127.0.0.1:9",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
  AGENT_API_URL: "http://127.0.0.1:9/v1",
  CONTENT_DIR: new URL("../../content", import.meta.url).pathname,
});

/** A tool that takes 10 s and ignores its signal, as a stuck network call would. */
function slowTool(onRun: () => void = () => {}): Tool {
  return defineTool({
    name: "slow",
    description: "Takes a long time.",
    schema: z.object({}),
    timeoutMs: 10_000,
    activity: () => "Waiting…",
    run: () => {
      onRun();
      return new Promise((resolve) => {
        const id = setTimeout(() => resolve({ done: true }), 10_000);
        // Only so the test leaves no timer behind; the loop must not rely on it.
        cleanups.push(() => clearTimeout(id));
      });
    },
  });
}
const cleanups: (() => void)[] = [];

async function loop(
  question: string,
  maxToolSteps: number,
  extra: Partial<ToolLoopOptions> & { tools?: Tool[]; onModel?: (m: ModelServer) => void } = {},
) {
  const model = startModelServer({ chunkDelayMs: 0 });
  extra.onModel?.(model);
  try {
    const agent = new AgentClient({
      baseUrl: model.url,
      apiKey: "",
      model: "terra",
      timeoutMs: 5_000,
      idleTimeoutMs: 5_000,
      maxRetries: 0,
    });
    const activity: string[] = [];
    const stream = new AnswerStream((chunk) => {
      if (chunk.kind === "tool") activity.push(chunk.content);
      return Promise.resolve();
    }, () => {});
    const { tools, onModel: _onModel, ...limits } = extra;
    const result = await runToolLoop({
      ...limits,
      model: agent,
      registry: new ToolRegistry(tools ?? [getProfile]),
      systemPrompt: "You are Terra.",
      conversation: [{ role: "user", content: question }],
      maxToolSteps,
      stream,
      signal: new AbortController().signal,
      toolContext: { config, chatId: "c", log: new Logger("test", "error", () => {}) },
    });
    await stream.finish();
    const offeredTools = model.requests.map((r) =>
      Boolean((r.body as { tools?: unknown[] }).tools)
    );
    const toolMessages = model.requests.map((r) =>
      (r.body as { messages: { role: string; content: string }[] }).messages
        .filter((m) => m.role === "tool").map((m) => JSON.parse(m.content))
    );
    return {
      toolMessages,
      result,
      answer: stream.answer,
      reasoning: stream.reasoning,
      offeredTools,
      activity: activity.join(""),
    };
  } finally {
    for (const cleanup of cleanups.splice(0)) cleanup();
    await model.close();
  }
}

Deno.test("runToolLoop() feeds tool results back and streams the final answer", async () => {
  const { result, answer, reasoning, offeredTools, activity } = await loop(
    "[tool get_profile {}] Who?",
    4,
  );
  assertEquals(result, { toolSteps: 1, toolsUsed: ["get_profile"] });
  // Each of the two model calls reasons; a blank line keeps them apart.
  assertEquals(reasoning.split("\n\n").length, 2, reasoning);
  assertEquals(offeredTools, [true, true]);
  assertEquals(activity, "Reading the profile…\n");
  assertEquals(answer.startsWith("From Morgan's profile:"), true, answer);
});

Deno.test("runToolLoop() stops offering tools after maxToolSteps and asks for an answer", async () => {
  const { result, answer, offeredTools } = await loop("[loop] [tool get_profile {}] Again!", 2);
  assertEquals(result.toolsUsed, ["get_profile", "get_profile"]);
  assertEquals(offeredTools, [true, true, false]);
  assertEquals(answer.startsWith("From Morgan's profile:"), true, answer);
});

Deno.test("runToolLoop() runs at most maxToolCallsPerStep calls, then asks for an answer", async () => {
  const calls = "[tool get_profile {}] ".repeat(6);
  const { result, answer, offeredTools, toolMessages } = await loop(`[loop] ${calls} Go`, 10, {
    maxToolCallsPerStep: 2,
  });
  assertEquals(result.toolsUsed, ["get_profile", "get_profile"]);
  assertEquals(result.limit, "tool_calls");
  // One step with tools, then the final answer without them.
  assertEquals(offeredTools, [true, false]);
  // Every call the model made got an answer; the four over the cap say why they did not run.
  const codes = toolMessages[1]!.map((m) => m.code ?? "ran");
  assertEquals(codes, ["ran", "ran", ...Array(4).fill("too_many_tool_calls")]);
  assertEquals(answer.startsWith("From Morgan's profile:"), true, answer);
});

Deno.test("runToolLoop() cuts slow tools at the turn deadline and still answers", async () => {
  const calls = "[tool slow {}] ".repeat(3);
  const { result, answer, offeredTools, toolMessages } = await loop(`[loop] ${calls} Go`, 20, {
    tools: [slowTool()],
    deadlineMs: 300,
    finalAnswerMs: 5_000,
  });
  assertEquals(result.limit, "deadline");
  // The first call was cut by the deadline; the other two never started.
  assertEquals(result.toolsUsed, ["slow"]);
  assertEquals(toolMessages[1]!.map((m) => m.code), ["aborted", "turn_deadline", "turn_deadline"]);
  assertEquals(offeredTools, [true, false]);
  assertEquals(answer.startsWith("I could not use slow:"), true, answer);
});

Deno.test("a final answer that also runs out of time ends the turn with TurnDeadlineError", async () => {
  let model: ModelServer | undefined;
  const error = await assertRejects(() =>
    loop("[loop] [tool slow {}] Go", 20, {
      // The slow tool runs after the first model call: the next call, the final answer, stalls.
      tools: [slowTool(() => model!.setFault("stall", 1))],
      onModel: (m) => model = m,
      deadlineMs: 300,
      finalAnswerMs: 300,
    })
  );
  assert(error instanceof TurnDeadlineError, String(error));
  assertEquals(error.code, "turn_deadline");
});
