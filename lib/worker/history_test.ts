import { assertEquals } from "../../tests/_assert.ts";
import type { ChatMessage } from "../protocol.ts";
import { failureWords } from "./failure_words.ts";
import { conversationFor } from "./history.ts";

function msg(id: string, sender: "Visitor" | "Terra", content: string): ChatMessage {
  return { id, chatId: "c", sender, content, createdAt: "", seq: 0 };
}

const CHAT = [
  msg("1", "Visitor", "first question"),
  msg("2", "Terra", "first answer"),
  msg("3", "Visitor", "second question"),
  msg("4", "Visitor", "a later message"),
];

Deno.test("conversationFor() stops at the message being answered", () => {
  const convo = conversationFor(CHAT, "3", 10_000);
  assertEquals(convo.map((m) => m.content), ["first question", "first answer", "second question"]);
  assertEquals(convo.map((m) => m.role), ["user", "assistant", "user"]);
});

Deno.test("conversationFor() drops the oldest messages beyond the budget", () => {
  const convo = conversationFor(CHAT, "3", 16);
  assertEquals(convo.map((m) => m.content), ["first answer", "second question"]);
});

Deno.test("conversationFor() always keeps the question, cut to the budget", () => {
  const long = [msg("1", "Visitor", "x".repeat(10_000))];
  const convo = conversationFor(long, "1", 300);
  assertEquals(convo.length, 1);
  assertEquals((convo[0]!.content as string).length, 1200);
});

Deno.test("conversationFor() leaves out failure sentences and interrupted replies a retry answered", () => {
  const chat: ChatMessage[] = [
    msg("1", "Visitor", "first question"),
    { ...msg("2", "Terra", failureWords(new Error("boom"))), replyTo: "1" },
    msg("3", "Visitor", "second question"),
    { ...msg("4", "Terra", "word1 word2"), replyTo: "3", interrupted: true },
    { ...msg("5", "Terra", "word1 word2 word3"), replyTo: "3" },
    msg("6", "Visitor", "third question"),
    { ...msg("7", "Terra", "half of it"), replyTo: "6", interrupted: true },
    msg("8", "Visitor", "fourth question"),
  ];
  const convo = conversationFor(chat, "8", 10_000);
  assertEquals(convo.map((m) => m.content), [
    "first question",
    "second question",
    "word1 word2 word3",
    "third question",
    "half of it",
    "fourth question",
  ]);
});
