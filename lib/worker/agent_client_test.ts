import { type ModelServer, startModelServer, stepDeltas } from "../demo_model/model_server.ts";
import { scriptReply } from "../demo_model/script.ts";
import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import {
  AgentClient,
  type AgentClientConfig,
  AgentError,
  type StepResult,
} from "./agent_client.ts";
import { CircuitBreaker } from "./circuit_breaker.ts";

const TOOLS = ["get_profile", "search_site", "fetch_live_page"].map((name) => ({
  type: "function" as const,
  function: { name, description: name, parameters: { type: "object", properties: {} } },
}));

/** A test with Deno's op and resource sanitizers on (off by default since Deno 2.8). */
function socketTest(name: string, fn: (model: ModelServer) => Promise<void>) {
  Deno.test({
    name,
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const model = startModelServer({ chunkDelayMs: 1 });
      try {
        await fn(model);
      } finally {
        await model.close();
      }
    },
  });
}

/** A client whose retry sleeps are recorded and skipped. */
function client(url: string, config: Partial<AgentClientConfig> = {}, breaker?: CircuitBreaker) {
  const sleeps: number[] = [];
  const agent = new AgentClient({
    baseUrl: url,
    apiKey: "",
    model: "terra",
    timeoutMs: 10_000,
    idleTimeoutMs: 5_000,
    maxRetries: 2,
    ...config,
  }, { breaker, sleep: (ms) => (sleeps.push(ms), Promise.resolve()) });
  return { agent, sleeps };
}

async function ask(
  agent: AgentClient,
  text: string,
  options: { signal?: AbortSignal; onAnswer?: () => void } = {},
) {
  const seen = { answer: "", reasoning: "", retracts: 0, answerDeltas: 0 };
  const result: StepResult = await agent.streamStep([{ role: "user", content: text }], TOOLS, {
    onAnswer: (t) => {
      seen.answer += t;
      seen.answerDeltas++;
      options.onAnswer?.();
    },
    onReasoning: (t) => seen.reasoning += t,
    onRetractAnswer: () => {
      seen.retracts++;
      seen.answer = "";
    },
  }, options.signal ?? new AbortController().signal);
  return { result, seen };
}

function kindOf(error: Error): string {
  assert(error instanceof AgentError, `expected an AgentError, got ${error}`);
  return error.kind;
}

socketTest(
  "streamStep() streams the answer, keeps reasoning apart and captures usage",
  async (model) => {
    const { result, seen } = await ask(
      client(model.url).agent,
      "[answer]Hello **there**, you[/answer]",
    );
    assertEquals([seen.answer, result.content], ["Hello **there**, you", "Hello **there**, you"]);
    assert(seen.answerDeltas >= 3, "the answer arrived in several deltas");
    assertEquals([seen.reasoning, result.reasoning].map((r) => r.startsWith("Thinking about:")), [
      true,
      true,
    ]);
    assertEquals([result.toolCalls, result.finishReason], [[], "stop"]);
    assert(result.usage && result.usage.promptTokens > 0 && result.usage.completionTokens > 0);
    const body = model.requests[0]!.body as Record<string, unknown>;
    assertEquals([body.stream, body.stream_options], [true, { include_usage: true }]);
    const viaField = await ask(client(model.url).agent, "[think reasoning] [answer]Hi[/answer]");
    assertEquals([viaField.seen.answer, viaField.seen.reasoning.startsWith("Thinking")], [
      "Hi",
      true,
    ]);
  },
);

socketTest("streamStep() assembles a tool call whose arguments span many chunks", async (model) => {
  const args = '{"url":"https://example.com/a/long/path?x=1","format":"text"}';
  const question = `[tool fetch_live_page ${args}] read`;
  const pieces = stepDeltas(scriptReply([{ role: "user", content: question }], TOOLS))
    .filter((d) => d.tool_calls).length;
  assert(pieces > 8, `the server splits the arguments (${pieces} deltas)`);
  const { result, seen } = await ask(client(model.url).agent, question);
  assertEquals(result.toolCalls, [{
    id: "call_0_fetch_live_page",
    name: "fetch_live_page",
    arguments: args,
  }]);
  assertEquals([result.finishReason, seen.answer], ["tool_calls", ""]);
});

socketTest(
  "streamStep() assembles parallel tool calls, also when all use index 0 (Ollama)",
  async (model) => {
    const { agent } = client(model.url);
    const question = '[tool get_profile {}] [tool search_site {"query":"lantern festival"}]';
    const expected = [
      { id: "call_0_get_profile", name: "get_profile", arguments: "{}" },
      { id: "call_1_search_site", name: "search_site", arguments: '{"query":"lantern festival"}' },
    ];
    assertEquals((await ask(agent, question)).result.toolCalls, expected);
    assertEquals((await ask(agent, `[ollama] ${question}`)).result.toolCalls, expected);
  },
);

socketTest(
  "streamStep() turns <think> content into reasoning, also without the opening tag",
  async (model) => {
    const { agent } = client(model.url);
    const tags = await ask(agent, "[think tags] [answer]The answer[/answer]");
    assertEquals([tags.seen.answer, tags.result.content, tags.seen.retracts], [
      "The answer",
      "The answer",
      0,
    ]);
    assertEquals(tags.seen.reasoning, "Thinking about: The answer");
    const notag = await ask(agent, "[think notag] [answer]The answer[/answer]");
    assertEquals([notag.seen.answer, notag.result.content], ["The answer", "The answer"]);
    assertEquals([notag.seen.reasoning, notag.result.reasoning], [
      "Thinking about: The answer",
      "Thinking about: The answer",
    ]);
    assertEquals(notag.seen.retracts, 1, "reasoning shown as answer was retracted");
  },
);

socketTest("streamStep() retries a 500 before the first token", async (model) => {
  model.setFault("error500", 1);
  const { agent, sleeps } = client(model.url);
  assertEquals((await ask(agent, "[answer]ok[/answer]")).seen.answer, "ok");
  assertEquals([model.requests.length, sleeps.length], [2, 1]);
});

socketTest("streamStep() waits as a 429's Retry-After asks, then succeeds", async (model) => {
  model.setFault("rate_limit", 2);
  const { agent, sleeps } = client(model.url);
  assertEquals((await ask(agent, "[answer]ok[/answer]")).seen.answer, "ok");
  assertEquals([model.requests.length, sleeps], [3, [1_000, 1_000]]);
});

socketTest("streamStep() gives up after maxRetries with a retryable error", async (model) => {
  model.setFault("error500");
  const { agent } = client(model.url, { maxRetries: 1 });
  const error = await assertRejects(() => ask(agent, "hi"));
  assertEquals([kindOf(error), (error as AgentError).retryable, model.requests.length], [
    "unavailable",
    true,
    2,
  ]);
});

socketTest("streamStep() times out on a stalled model", async (model) => {
  model.setFault("stall");
  const { agent } = client(model.url, { idleTimeoutMs: 300, maxRetries: 0 });
  assertEquals(kindOf(await assertRejects(() => ask(agent, "hi"))), "timeout");
  model.setFault("stall");
  const whole = client(model.url, { timeoutMs: 400, idleTimeoutMs: 5_000, maxRetries: 0 });
  const error = await assertRejects(() => ask(whole.agent, "hi")) as AgentError;
  assertEquals([error.kind, error.retryable], ["timeout", false]);
});

socketTest("a stall after the first token times out and is not retried", async (model) => {
  model.setFault("stall_after_first_token");
  const { agent } = client(model.url, { idleTimeoutMs: 300, maxRetries: 3 });
  assertEquals(kindOf(await assertRejects(() => ask(agent, "[long 20]"))), "timeout");
  assertEquals(model.requests.length, 1);
});

socketTest("a stream cut mid-answer fails as stream_cut without a retry", async (model) => {
  model.setFault("cut");
  const { agent, sleeps } = client(model.url, { maxRetries: 3 });
  const error = await assertRejects(() => ask(agent, "[long 50]")) as AgentError;
  assertEquals([error.kind, error.retryable], ["stream_cut", false]);
  assertEquals([model.requests.length, sleeps.length], [1, 0]);
});

socketTest(
  "a caller abort stops the step promptly and the server sees the disconnect",
  async (model) => {
    const stop = new AbortController();
    const { agent } = client(model.url);
    let deltas = 0;
    const error = await assertRejects(() =>
      ask(agent, "[long 100000]", {
        signal: stop.signal,
        onAnswer: () => ++deltas === 3 && stop.abort(),
      })
    );
    assertEquals(kindOf(error), "aborted");
    for (let i = 0; i < 100 && !model.requests[0]!.aborted; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals([model.requests.length, model.requests[0]!.aborted], [1, true]);
  },
);

socketTest(
  "the circuit opens after repeated failures, then fails fast without a request",
  async (model) => {
    model.setFault("error500");
    const breaker = new CircuitBreaker(2, 60_000);
    const { agent } = client(model.url, { maxRetries: 1 }, breaker);
    for (let i = 0; i < 2; i++) {
      assertEquals(
        kindOf(await assertRejects(() => ask(agent, "hi"))),
        "unavailable",
      );
    }
    assertEquals([model.requests.length, breaker.state()], [4, "open"]);
    const error = await assertRejects(() => ask(agent, "hi"), "calls resume in") as AgentError;
    assertEquals([error.kind, error.retryable, model.requests.length], ["circuit_open", false, 4]);
  },
);

socketTest(
  "an unreachable model is unavailable; probe() reports it and a live one",
  async (model) => {
    const closed = startModelServer();
    await closed.close();
    const { agent, sleeps } = client(closed.url, { maxRetries: 1 });
    const error = await assertRejects(() => ask(agent, "hi")) as AgentError;
    assertEquals([error.kind, error.retryable, sleeps.length], ["unavailable", true, 1]);
    const down = await agent.probe();
    assertEquals([down.ok, down.detail], [
      false,
      "The model API cannot be reached: connection refused",
    ]);
    const up = await client(model.url).agent.probe();
    assert(up.ok, up.detail);
    assertEquals((model.requests[0]!.body as { max_tokens?: number }).max_tokens, 1);
  },
);

socketTest("a throwing callback ends the step with its own error", async (model) => {
  const { agent } = client(model.url);
  const failure = new Error("Consumer broke");
  const error = await assertRejects(() =>
    agent.streamStep([{ role: "user", content: "[long 1000]" }], undefined, {
      onAnswer: () => {
        throw failure;
      },
      onReasoning: () => {},
    }, new AbortController().signal)
  );
  assertEquals([error === failure, model.requests.length], [true, 1]);
});
