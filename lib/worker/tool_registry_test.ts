import { z } from "zod";
import { assertEquals } from "../../tests/_assert.ts";
import { Logger } from "../log.ts";
import { parseWorkerConfig } from "./config.ts";
import { defineTool, ToolError, ToolRegistry } from "./tool_registry.ts";

const config = parseWorkerConfig({
  API_BASE_URL: "http://127.0.0.1:9",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
  AGENT_API_URL: "http://127.0.0.1:9/v1",
});
const context = {
  config,
  chatId: "c",
  log: new Logger("test", "error", () => {}),
  signal: new AbortController().signal,
};

const echo = defineTool({
  name: "echo",
  description: "Echoes",
  schema: z.object({ text: z.string().max(10) }),
  timeoutMs: 200,
  maxResultChars: 60,
  activity: ({ text }) => `Echoing ${text}`,
  run: ({ text }) => {
    if (text === "fail") throw new ToolError("nope", "It failed on purpose");
    if (text === "slow") return new Promise(() => {});
    if (text === "big") return Promise.resolve({ text: "x".repeat(500) });
    return Promise.resolve({ text });
  },
});
const registry = new ToolRegistry([echo]);
const run = (args: string, name = "echo") => registry.execute({ name, arguments: args }, context);

Deno.test("the JSON schema sent to the model comes from the zod schema", () => {
  const [tool] = registry.openAiTools();
  const fn = tool!.type === "function" ? tool!.function : null;
  assertEquals(fn?.name, "echo");
  assertEquals((fn?.parameters as { properties: Record<string, unknown> }).properties.text, {
    type: "string",
    maxLength: 10,
  });
});

Deno.test("execute() returns results and turns every failure into {error, code}", async () => {
  assertEquals(JSON.parse((await run('{"text":"hi"}')).content), { text: "hi" });
  const codes = await Promise.all(
    ['{"text":"fail"}', '{"text":"slow"}', '{"text":', '{"text":"far too long"}', "{}"].map(
      async (args) => JSON.parse((await run(args)).content).code,
    ),
  );
  assertEquals(codes, ["nope", "timeout", "bad_arguments", "bad_arguments", "bad_arguments"]);
  assertEquals(JSON.parse((await run("{}", "missing")).content).code, "unknown_tool");
});

Deno.test("execute() caps large results and marks them truncated", async () => {
  const outcome = JSON.parse((await run('{"text":"big"}')).content);
  assertEquals(outcome.truncated, true);
  assertEquals(outcome.excerpt.length, 60);
});

Deno.test("activityFor() describes a call in plain words before it runs", () => {
  assertEquals(registry.activityFor({ name: "echo", arguments: '{"text":"hi"}' }), "Echoing hi");
  assertEquals(registry.activityFor({ name: "echo", arguments: "{" }), "Calling echo…");
});
