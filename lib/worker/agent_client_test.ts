import { startModelServer } from "../demo_model/model_server.ts";
import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { AgentClient, AgentError, type StepResult } from "./agent_client.ts";
import { CircuitBreaker } from "./circuit_breaker.ts";

const TOOLS = ["get_profile", "search_site", "fetch_live_page"].map((name) => ({
  type: "function" as const,
  function: { name, description: name, parameters: { type: "object", properties: {} } },
}));

async function withModel(fn: (model: ReturnType<typeof startModelServer>) => Promise<void>) {
  const model = startModelServer({ chunkDelayMs: 1 });
  try {
    await fn(model);
  } finally {
    await model.close();
  }
}

function client(
  url: string,
  overrides: Partial<ConstructorParameters<typeof AgentClient>[0]> = {},
  breaker?: CircuitBreaker,
) {
  return new AgentClient({
    baseUrl: url,
    apiKey: "",
    model: "terra",
    timeoutMs: 5_000,
    idleTimeoutMs: 2_000,
    maxRetries: 2,
    ...overrides,
  }, {
    breaker,
    sleep: (ms, signal) =>
      new Promise((r, j) => {
        const t = setTimeout(r, Math.min(ms, 50));
        signal?.addEventListener("abort", () => (clearTimeout(t), j(signal.reason)), {
          once: true,
        });
      }),
  });
}

async function ask(agent: AgentClient, text: string, signal = new AbortController().signal) {
  const seen = { answer: "", reasoning: "", retracted: 0 };
  const result: StepResult = await agent.streamStep([{ role: "user", content: text }], TOOLS, {
    onAnswer: (t) => seen.answer += t,
    onReasoning: (t) => seen.reasoning += t,
    onRetractAnswer: () => {
      seen.retracted++;
      seen.answer = "";
    },
  }, signal);
  return { result, seen };
}

Deno.test("a streamed answer keeps reasoning apart and captures usage", async () => {
  await withModel(async (model) => {
    const { result, seen } = await ask(client(model.url), "[answer]Hello **there**[/answer]");
    assertEquals(seen.answer, "Hello **there**");
    assertEquals(result.content, "Hello **there**");
    assert(seen.reasoning.startsWith("Thinking about:"));
    assertEquals(result.toolCalls, []);
    assertEquals(result.usage?.promptTokens, 42);
  });
});

Deno.test("tool calls are assembled from split deltas, in parallel and Ollama-style", async () => {
  await withModel(async (model) => {
    const agent = client(model.url);
    const args = '{"url":"https://example.com/a/long/path?x=1"}';
    const one = await ask(agent, `[tool fetch_live_page ${args}] read`);
    assertEquals(one.result.toolCalls, [{
      id: "call_0_fetch_live_page",
      name: "fetch_live_page",
      arguments: args,
    }]);
    const two = await ask(agent, '[tool get_profile {}] [tool search_site {"query":"lantern"}]');
    assertEquals(two.result.toolCalls.map((c) => [c.name, c.arguments]), [["get_profile", "{}"], [
      "search_site",
      '{"query":"lantern"}',
    ]]);
    const ollama = await ask(
      agent,
      '[ollama] [tool get_profile {}] [tool search_site {"query":"x"}]',
    );
    assertEquals(ollama.result.toolCalls.map((c) => c.name), ["get_profile", "search_site"]);
  });
});

Deno.test("<think> tags, with or without the opening tag, become reasoning", async () => {
  await withModel(async (model) => {
    const agent = client(model.url);
    const tags = await ask(agent, "[think tags] [answer]The answer[/answer]");
    assertEquals([tags.seen.answer, tags.seen.reasoning.startsWith("Thinking about:")], [
      "The answer",
      true,
    ]);
    const notag = await ask(agent, "[think notag] [answer]The answer[/answer]");
    assertEquals(notag.seen.answer, "The answer");
    assert(notag.seen.reasoning.startsWith("Thinking about:"), notag.seen.reasoning);
    assertEquals(notag.result.content, "The answer");
  });
});

Deno.test("failures before the first token are retried; 429 is honoured", async () => {
  await withModel(async (model) => {
    model.setFault("error500", 1);
    assertEquals((await ask(client(model.url), "[answer]ok[/answer]")).seen.answer, "ok");
    model.setFault("rate_limit", 1);
    assertEquals((await ask(client(model.url), "[answer]ok[/answer]")).seen.answer, "ok");
    assertEquals(model.requests.length, 4);
  });
});

Deno.test("a stream cut after the first token fails without a retry", async () => {
  await withModel(async (model) => {
    model.setFault("cut");
    const error = await assertRejects(() => ask(client(model.url), "[long 50]")) as AgentError;
    assertEquals(error.kind, "stream_cut");
    assertEquals(model.requests.length, 1);
  });
});

Deno.test("a stalled model times out; a cancelled call aborts the request", async () => {
  await withModel(async (model) => {
    model.setFault("stall");
    const stalled = await assertRejects(() =>
      ask(client(model.url, { idleTimeoutMs: 300, maxRetries: 0 }), "hi")
    ) as AgentError;
    assertEquals(stalled.kind, "timeout");
    model.setFault("none");
    const stop = new AbortController();
    const agent = client(model.url);
    const pending = ask(agent, "[long 100000]", stop.signal);
    await new Promise((r) => setTimeout(r, 200));
    stop.abort("cancelled");
    assertEquals((await assertRejects(() => pending) as AgentError).kind, "aborted");
    for (let i = 0; i < 50 && !model.requests.at(-1)!.aborted; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals(model.requests.at(-1)!.aborted, true);
  });
});

Deno.test("the circuit opens after repeated failures and then fails fast", async () => {
  await withModel(async (model) => {
    model.setFault("error500");
    const agent = client(model.url, { maxRetries: 0 }, new CircuitBreaker(2, 60_000));
    for (let i = 0; i < 2; i++) await assertRejects(() => ask(agent, "hi"));
    const before = model.requests.length;
    assertEquals((await assertRejects(() => ask(agent, "hi")) as AgentError).kind, "circuit_open");
    assertEquals(model.requests.length, before);
  });
});
