import { assertEquals } from "../../tests/_assert.ts";
import { Logger } from "../log.ts";
import type { Turn } from "../protocol.ts";
import { parseWorkerConfig } from "./config.ts";
import { RelayRequestError } from "./relay_client.ts";
import type { StepModel } from "./tool_loop.ts";
import { ToolRegistry } from "./tool_registry.ts";
import { TurnRunner, type TurnRunnerDeps } from "./turn_runner.ts";

const config = parseWorkerConfig({
  API_BASE_URL: "http://127.0.0.1:9",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
  AGENT_API_URL: "http://127.0.0.1:9/v1",
  CONTENT_DIR: new URL("../../content", import.meta.url).pathname,
});

const turn: Turn = {
  id: "t1",
  chatId: "c1",
  messageId: "t1",
  leaseId: "l1",
  leaseExpiresAt: new Date(Date.now() + 60_000).toISOString(),
  attempt: 1,
  cancelRequested: false,
};

/** A model that answers "Hello." in one step. */
const model: StepModel = {
  streamStep(_messages, _tools, callbacks) {
    callbacks.onAnswer("Hello.");
    return Promise.resolve({
      content: "Hello.",
      reasoning: "",
      toolCalls: [],
      finishReason: "stop",
      usage: null,
    });
  },
};

/** A relay whose reply post fails with `replyError`; records what the runner called. */
function fakeRelay(replyError: Error) {
  const calls: string[] = [];
  const relay: TurnRunnerDeps["relay"] = {
    renew: () => Promise.resolve({ leaseExpiresAt: turn.leaseExpiresAt, cancelRequested: false }),
    release: (turnId) => (calls.push(`release ${turnId}`), Promise.resolve()),
    sendChunk: () => Promise.resolve(),
    setState: () => Promise.resolve(),
    postReply: () => Promise.reject(replyError),
    history: () =>
      Promise.resolve([{
        id: "t1",
        chatId: "c1",
        sender: "Visitor" as const,
        content: "Hi",
        createdAt: new Date().toISOString(),
        seq: 1,
      }]),
    failTurn: (t, failure) => (calls.push(`fail ${t.id} ${failure.code}`), Promise.resolve()),
  } as TurnRunnerDeps["relay"];
  return { relay, calls };
}

function runner(relay: TurnRunnerDeps["relay"]): TurnRunner {
  return new TurnRunner({
    relay,
    model,
    registry: new ToolRegistry([]),
    systemPrompt: "You are Terra.",
    config,
    log: new Logger("test", "error", () => {}),
  });
}

Deno.test("a relay that cannot be reached mid-turn hands the turn back instead of failing it", async () => {
  const { relay, calls } = fakeRelay(new RelayRequestError(0, "unreachable", "Relay down"));
  assertEquals(await runner(relay).run(turn), "handed_back");
  assertEquals(calls, ["release t1"]);
});

Deno.test("a relay answering 503 store_unavailable hands the turn back as well", async () => {
  const { relay, calls } = fakeRelay(new RelayRequestError(503, "store_unavailable", "Full disk"));
  assertEquals(await runner(relay).run(turn), "handed_back");
  assertEquals(calls, ["release t1"]);
});

Deno.test("a relay refusal (4xx) is the turn's failure, reported with the relay's code", async () => {
  const { relay, calls } = fakeRelay(new RelayRequestError(400, "invalid_body", "Bad reply"));
  assertEquals(await runner(relay).run(turn), "failed");
  assertEquals(calls, ["fail t1 invalid_body"]);
});
