import { assertEquals } from "../../tests/_assert.ts";
import type { ChatEvent } from "../../lib/protocol.ts";
import { ChatState } from "./chat_state.ts";

const at = "2026-12-01T10:00:00.000Z";
const visitor = (seq: number): ChatEvent => ({
  type: "message",
  id: "m1",
  chatId: "c",
  sender: "Visitor",
  content: "hi",
  createdAt: at,
  seq,
});
const chunk = (
  seq: number,
  kind: "answer" | "tool",
  offset: number,
  content: string,
): ChatEvent => ({
  type: "assistantChunk",
  chatId: "c",
  content,
  done: false,
  emittedAt: at,
  seq,
  kind,
  offset,
  turnId: "m1",
});

Deno.test("chunks apply at their offsets, so a replayed chunk changes nothing", () => {
  const state = new ChatState();
  for (const e of [visitor(1), chunk(2, "tool", 0, "Searching\n"), chunk(3, "answer", 0, "Hel")]) {
    state.apply(e);
  }
  state.apply(chunk(4, "answer", 3, "lo"));
  state.apply(chunk(4, "answer", 3, "lo"));
  state.apply(chunk(5, "answer", 0, "Hello"));
  assertEquals(state.live?.texts.answer, "Hello");
  assertEquals(state.lastSeq, 5);
});

Deno.test("the stored reply takes the live answer's place and keeps its tool activity", () => {
  const state = new ChatState();
  state.apply(visitor(1));
  state.apply(chunk(2, "tool", 0, "Searching\n"));
  state.apply(chunk(3, "answer", 0, "Hi"));
  const change = state.apply({
    type: "message",
    id: "r1",
    chatId: "c",
    sender: "Terra",
    content: "Hi there",
    createdAt: at,
    seq: 4,
    replyTo: "m1",
  });
  assertEquals(change.kind === "message" && change.replacesLive, true);
  assertEquals(state.live, null);
  assertEquals(state.messages.map((m) => [m.id, m.tool]), [["m1", ""], ["r1", "Searching\n"]]);
  // A late chunk of the answered turn and a repeated message are ignored.
  assertEquals(state.apply(chunk(5, "answer", 2, "!")).kind, "none");
  assertEquals(state.apply(visitor(1)).kind, "none");
  assertEquals(state.messages.length, 2);
});

const workerState = (
  seq: number,
  state: "queued" | "processing" | "error",
  extra: { turnId?: string; code?: string } = {},
): ChatEvent => ({
  type: "workerState",
  chatId: "c",
  state,
  detail: state === "error" ? "Terra could not answer this time." : "",
  updatedAt: at,
  seq,
  ...extra,
});

Deno.test("a failed turn belongs to its question until a retry queues it again", () => {
  const state = new ChatState();
  state.apply(visitor(1));
  const failed = state.apply(workerState(2, "error", { turnId: "m1", code: "llm_unavailable" }));
  assertEquals(failed.kind === "state" && failed.failure?.messageId, "m1");
  assertEquals(state.failures.get("m1")?.code, "llm_unavailable");
  assertEquals(state.messages.length, 1, "no Terra message for a failure");
  const reopened = state.apply(workerState(3, "queued", { turnId: "m1" }));
  assertEquals(reopened.kind === "state" && reopened.failure?.failure, null);
  assertEquals(state.failures.size, 0);
});

Deno.test("the retried turn streams although an interrupted reply answered it before", () => {
  const state = new ChatState();
  state.apply(visitor(1));
  state.apply({
    type: "message",
    id: "r1",
    chatId: "c",
    sender: "Terra",
    content: "Half an ans",
    createdAt: at,
    seq: 2,
    replyTo: "m1",
    interrupted: true,
  });
  state.apply(workerState(3, "error", { turnId: "m1", code: "stream_cut" }));
  assertEquals(state.apply(chunk(4, "answer", 0, "late")).kind, "none");
  state.apply(workerState(5, "queued", { turnId: "m1" }));
  assertEquals(state.apply(chunk(6, "answer", 0, "A whole answer")).kind, "live");
});

Deno.test("failures from stored messages fill in what the replay lacked, not what a retry cleared", () => {
  const state = new ChatState();
  state.apply(visitor(1));
  const failure = { code: "x", error: "Terra could not answer.", failedAt: at };
  const stored = [{
    id: "m1",
    chatId: "c",
    sender: "Visitor" as const,
    content: "hi",
    createdAt: at,
    seq: 1,
    failure,
  }];
  assertEquals(state.applyHistory(stored), ["m1"]);
  assertEquals(state.applyHistory(stored), [], "once");
  const again = new ChatState();
  again.apply(visitor(1));
  again.apply(workerState(2, "queued", { turnId: "m1" }));
  assertEquals(again.applyHistory(stored), [], "a retry since then wins");
});
