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
