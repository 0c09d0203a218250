import { startModelServer } from "../demo_model/model_server.ts";
import { assertEquals } from "../../tests/_assert.ts";
import { Logger } from "../log.ts";
import { AgentClient } from "./agent_client.ts";
import { AnswerStream } from "./answer_stream.ts";
import { parseWorkerConfig } from "./config.ts";
import { runToolLoop } from "./tool_loop.ts";
import { ToolRegistry } from "./tool_registry.ts";
import { getProfile } from "./tools/get_profile.ts";

const config = parseWorkerConfig({
  API_BASE_URL: "http://127.0.0.1:9",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
  AGENT_API_URL: "http://127.0.0.1:9/v1",
  CONTENT_DIR: new URL("../../content", import.meta.url).pathname,
});

async function loop(question: string, maxToolSteps: number) {
  const model = startModelServer({ chunkDelayMs: 0 });
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
    const result = await runToolLoop({
      model: agent,
      registry: new ToolRegistry([getProfile]),
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
    return {
      result,
      answer: stream.answer,
      reasoning: stream.reasoning,
      offeredTools,
      activity: activity.join(""),
    };
  } finally {
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
