import type { AssistantChunkEvent, ChatEvent } from "../protocol.ts";
import { assertEquals } from "../../tests/_assert.ts";
import { LegacyFrames } from "./legacy_frames.ts";

const AT = "2026-12-01T21:49:30.158Z";

function chunk(
  kind: AssistantChunkEvent["kind"],
  offset: number,
  content: string,
  done = false,
  turnId: string | null = "t1",
): AssistantChunkEvent {
  return {
    type: "assistantChunk",
    chatId: "c1",
    content,
    done,
    emittedAt: AT,
    seq: 1,
    kind,
    offset,
    turnId,
  };
}

function frames(legacy: LegacyFrames, events: ChatEvent[]): unknown[] {
  return events.map((e) => legacy.frame(e)).filter((f) => f !== null).map((f) => JSON.parse(f!));
}

Deno.test("messages and worker states go out in the original shapes only", () => {
  const legacy = new LegacyFrames();
  assertEquals(
    frames(legacy, [
      {
        type: "message",
        id: "m1",
        chatId: "c1",
        sender: "Terra",
        content: "hi",
        createdAt: AT,
        seq: 4,
        replyTo: "t1",
        stopped: true,
      },
      {
        type: "workerState",
        chatId: "c1",
        state: "queued",
        detail: "",
        updatedAt: AT,
        seq: 5,
        queuePosition: 2,
      },
      {
        type: "workerState",
        chatId: "c1",
        state: "queued",
        detail: "2 chats ahead of you",
        updatedAt: AT,
        seq: 6,
      },
    ]),
    [
      { id: "m1", chatId: "c1", sender: "Terra", content: "hi", createdAt: AT },
      { type: "workerState", chatId: "c1", state: "queued", detail: null, updatedAt: AT },
      {
        type: "workerState",
        chatId: "c1",
        state: "queued",
        detail: "2 chats ahead of you",
        updatedAt: AT,
      },
    ],
  );
});

Deno.test("only answer text reaches a legacy socket, and a done chunk always ends it", () => {
  const legacy = new LegacyFrames();
  const out = frames(legacy, [
    chunk("reasoning", 0, "Thinking about: the question"),
    chunk("tool", 0, "Searching the site…\n"),
    chunk("answer", 0, "Hello"),
    chunk("reasoning", 28, " more"),
    chunk("answer", 5, ", world"),
    chunk("reasoning", 33, "", true),
  ]);
  const chunkFrame = (content: string, done = false) => ({
    type: "assistantChunk",
    chatId: "c1",
    content,
    done,
    emittedAt: AT,
  });
  assertEquals(out, [chunkFrame("Hello"), chunkFrame(", world"), chunkFrame("", true)]);
});

Deno.test("a resent snapshot adds nothing, a cut-back appends from the new end, a new turn starts over", () => {
  const legacy = new LegacyFrames();
  const contents = (events: ChatEvent[]) =>
    frames(legacy, events).map((f) => (f as { content: string }).content);
  assertEquals(
    contents([
      chunk("answer", 0, "abc"),
      chunk("answer", 3, "def"),
      chunk("answer", 0, "abcdef"), // a snapshot: nothing new
      chunk("answer", 0, "abcdefgh"), // a longer snapshot: only the tail
      chunk("answer", 4, ""), // cut back to "abcd"
      chunk("answer", 4, "XY"),
      chunk("answer", 6, "", true),
    ]),
    ["abc", "def", "gh", "XY", ""],
  );
  // The next turn (or a legacy worker with no turn) streams from the start again.
  assertEquals(
    contents([chunk("answer", 0, "new", false, "t2"), chunk("answer", 0, "x", false, null)]),
    ["new", "x"],
  );
});

Deno.test("replayed chunk snapshots are left out; replayed messages are kept", () => {
  const legacy = new LegacyFrames();
  assertEquals(legacy.replayFrame(chunk("answer", 0, "partial")), null);
  assertEquals(
    JSON.parse(
      legacy.replayFrame({
        type: "message",
        id: "m1",
        chatId: "c1",
        sender: "Visitor",
        content: "q",
        createdAt: AT,
        seq: 1,
      })!,
    ),
    { id: "m1", chatId: "c1", sender: "Visitor", content: "q", createdAt: AT },
  );
});
