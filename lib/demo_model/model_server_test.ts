import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { spawnDeno } from "../../tests/_process.ts";
import { type ModelServer, scriptReply, startModelServer } from "./model_server.ts";

const TOOLS = ["get_profile", "search_site"].map((name) => ({
  type: "function",
  function: { name, parameters: { type: "object", properties: {} } },
}));

/** A test with Deno's op and resource sanitizers on, around a fresh server. */
function serverTest(name: string, fn: (model: ModelServer) => Promise<void>) {
  Deno.test({
    name,
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const model = startModelServer({ chunkDelayMs: 0 });
      try {
        await fn(model);
      } finally {
        await model.close();
      }
    },
  });
}

function complete(model: ModelServer, body: Record<string, unknown>, signal?: AbortSignal) {
  return fetch(`${model.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "terra", ...body }),
    ...(signal ? { signal } : {}),
  });
}

type Chunk = {
  object: string;
  choices: { delta: Record<string, unknown>; finish_reason: string | null }[];
  usage?: { prompt_tokens: number };
};
type CallDelta = { index: number; id?: string; function: { name?: string; arguments?: string } };

serverTest(
  "a streamed tool step is real SSE: comment first, split arguments, usage, [DONE]",
  async (model) => {
    const content =
      '[tool get_profile {"fields":["bio","projects"]}] [tool search_site {"query":"lantern"}]';
    const response = await complete(model, {
      messages: [{ role: "user", content }],
      tools: TOOLS,
      stream: true,
      stream_options: { include_usage: true },
    });
    assertEquals(response.headers.get("content-type"), "text/event-stream");
    const text = await response.text();
    assert(text.startsWith(": keep-alive\n\n"), "an SSE comment comes first");
    assert(text.endsWith("data: [DONE]\n\n"), "[DONE] comes last");
    const events = text.split("\n\n").filter(Boolean).slice(1, -1);
    assert(events.every((e) => e.startsWith("data: {")), "every event is one data line");
    const chunks = events.map((e) => JSON.parse(e.slice(6)) as Chunk);
    assert(chunks.every((c) => c.object === "chat.completion.chunk"));
    const usage = chunks.at(-1)!;
    assertEquals(usage.choices, []);
    assert(usage.usage!.prompt_tokens > 0);
    assertEquals(chunks.at(-2)!.choices[0]!.finish_reason, "tool_calls");
    assert(chunks.slice(0, -2).every((c) => c.choices[0]!.finish_reason === null));

    const calls = chunks.flatMap((c) => (c.choices[0]?.delta.tool_calls ?? []) as CallDelta[]);
    const seen = new Map<number, { id: string; name: string; args: string }>();
    for (const call of calls) {
      const known = seen.get(call.index);
      if (!known) {
        assert(call.id && call.function.name, "the first delta of an index carries id and name");
        seen.set(call.index, { id: call.id, name: call.function.name, args: "" });
        continue;
      }
      assertEquals([call.id, call.function.name], [undefined, undefined], "id and name only once");
      const piece = call.function.arguments ?? "";
      assert(piece.length >= 1 && piece.length <= 7, `argument piece "${piece}"`);
      known.args += piece;
    }
    assertEquals([...seen.values()], [
      { id: "call_0_get_profile", name: "get_profile", args: '{"fields":["bio","projects"]}' },
      { id: "call_1_search_site", name: "search_site", args: '{"query":"lantern"}' },
    ]);
    const order = calls.map((c) => c.index).join("");
    assert(order.includes("0101"), `parallel calls are interleaved (${order})`);
    assert(calls.filter((c) => c.function.arguments).length >= 8, "arguments span many chunks");
  },
);

serverTest("a streamed answer comes a word or less per chunk, reasoning first", async (model) => {
  const response = await complete(model, {
    messages: [{ role: "user", content: "[answer]One two three four[/answer]" }],
    stream: true,
  });
  const chunks = (await response.text()).split("\n\n").filter((e) => e.startsWith("data: {"))
    .map((e) => JSON.parse(e.slice(6)) as Chunk);
  assert(chunks.every((c) => c.choices.length === 1), "no usage chunk unless asked for");
  const deltas = chunks.map((c) => c.choices[0]!.delta);
  const firstContent = deltas.findIndex((d) => d.content);
  const lastReasoning = deltas.findLastIndex((d) => d.reasoning_content);
  assert(lastReasoning >= 0 && lastReasoning < firstContent, "reasoning streams before the answer");
  const pieces = deltas.map((d) => d.content).filter(Boolean) as string[];
  assertEquals(pieces, ["One ", "two ", "three ", "four"]);
});

serverTest("a non-streamed request gets one chat.completion with tool_calls", async (model) => {
  const response = await complete(model, {
    messages: [{ role: "user", content: "What is new?" }],
    tools: TOOLS,
  });
  const body = await response.json();
  assertEquals(body.object, "chat.completion");
  assertEquals(body.choices[0].finish_reason, "tool_calls");
  assertEquals(body.choices[0].message.tool_calls, [{
    id: "call_0_search_site",
    type: "function",
    function: { name: "search_site", arguments: '{"query":"What is new?"}' },
  }]);
  assertEquals(model.requests.map((r) => [r.completed, r.aborted]), [[true, false]]);
});

serverTest(
  "faults: 500, then 429 with Retry-After, for the given number of requests",
  async (model) => {
    const ask = () => complete(model, { messages: [{ role: "user", content: "hi" }] });
    model.setFault("error500", 1);
    const crashed = await ask();
    assertEquals([crashed.status, (await crashed.json()).error.type], [500, "server_error"]);
    const control = await fetch(`http://127.0.0.1:${model.port}/control`, {
      method: "POST",
      body: JSON.stringify({ fault: "rate_limit", times: 2 }),
    });
    assertEquals(await control.json(), { fault: "rate_limit", times: 2 });
    for (let i = 0; i < 2; i++) {
      const limited = await ask();
      await limited.body?.cancel();
      assertEquals([limited.status, limited.headers.get("retry-after")], [429, "1"]);
    }
    const fine = await ask();
    assertEquals(fine.status, 200);
    await fine.body?.cancel();
    const bad = await fetch(`http://127.0.0.1:${model.port}/control`, {
      method: "POST",
      body: JSON.stringify({ fault: "explode" }),
    });
    assertEquals([bad.status, (await bad.json()).error.message], [400, 'Unknown fault "explode"']);
  },
);

serverTest("a cut stream breaks off without [DONE]", async (model) => {
  model.setFault("cut");
  const response = await complete(model, {
    messages: [{ role: "user", content: "[long 50]" }],
    stream: true,
  });
  assertEquals(response.status, 200);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let received = "";
  await assertRejects(async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      received += value;
    }
  });
  assert(received.includes("data: {"), "some chunks arrived first");
  assert(!received.includes("[DONE]"));
  assertEquals(model.requests[0]!.completed, false);
});

serverTest(
  "a stalled request sends nothing and is recorded as aborted when the client leaves",
  async (model) => {
    model.setFault("stall");
    const leave = new AbortController();
    const response = await complete(model, {
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    }, leave.signal);
    const reader = response.body!.getReader();
    const read = reader.read();
    leave.abort();
    await assertRejects(() => read);
    for (let i = 0; i < 100 && !model.requests[0]!.aborted; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals([model.requests[0]!.aborted, model.requests[0]!.completed], [true, false]);
  },
);

serverTest("/health, /v1/models and unknown routes answer as an agent would", async (model) => {
  const health = await fetch(`http://127.0.0.1:${model.port}/health`);
  assertEquals(await health.json(), { status: "ok" });
  const models = await (await fetch(`${model.url}/models`)).json();
  assertEquals([models.object, models.data[0].id], ["list", "terra-demo"]);
  const missing = await fetch(`${model.url}/embeddings`, { method: "POST", body: "{}" });
  assertEquals(missing.status, 404);
  await missing.body?.cancel();
  assertEquals(model.requests, []);
});

Deno.test("scriptReply() follows the directives of the last user message", () => {
  const user = (content: string) => [{ role: "user", content }];
  const step = (content: string, tools?: typeof TOOLS) => scriptReply(user(content), tools);
  assertEquals(step("Hi  there").content, "Terra here. You asked: Hi there");
  assertEquals(step("[long 3]").content, "word1 word2 word3");
  assertEquals(step("[answer]**Bold**\n- item[/answer]", TOOLS).content, "**Bold**\n- item");
  assertEquals(step("[tool list_repos {}] Hi", TOOLS).toolCalls, [], "only offered tools");
  assertEquals(step("Hi", TOOLS).toolCalls[0]!.arguments, '{"query":"Hi"}');
  assertEquals(step("[think none] [tool get_profile {}]", TOOLS).reasoningStyle, "none");
  assertEquals(step("[think none] [answer]x[/answer]").reasoningStyle, "field");
  assertEquals(step("[ollama] [tool get_profile {}]", TOOLS).ollamaIndexes, true);
  const final = scriptReply([
    ...user("[tool get_profile {}] Who?"),
    {
      role: "assistant",
      content: "",
      tool_calls: [{ function: { name: "get_profile" } }],
    },
    { role: "tool", content: '{"profile": "# Morgan\\n\\nBuilds lanterns"}' },
  ], TOOLS);
  assertEquals(final.content, "From Morgan's profile: Builds lanterns.");
  assertEquals([final.toolCalls, final.reasoning], [[], "Thinking about: Who?"]);
});

Deno.test({
  name: "main.ts serves /health on the given port and stops on SIGTERM",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const main = new URL("./main.ts", import.meta.url).pathname;
    const child = spawnDeno(["run", "--allow-net=127.0.0.1", main, `--port=${port}`]);
    try {
      const line = JSON.parse(await child.waitForLine('"msg":"listening"', 30_000));
      assertEquals([line.port, line.url], [port, `http://127.0.0.1:${port}/v1`]);
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      assertEquals(await health.json(), { status: "ok" });
      assertEquals(await child.stop(10_000), 0);
      assert(child.lines.some((l) => l.includes('"msg":"stopped"')), child.lines.join("\n"));
    } finally {
      await child.kill();
    }
  },
});
