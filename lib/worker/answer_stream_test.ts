import { assertEquals } from "../../tests/_assert.ts";
import { AnswerStream } from "./answer_stream.ts";

Deno.test("AnswerStream merges text that piles up behind a slow send, keeping offsets", async () => {
  const sent: [string, string, number, boolean][] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => release = resolve);
  const stream = new AnswerStream(async (chunk) => {
    sent.push([chunk.kind, chunk.content, chunk.offset, chunk.done]);
    if (sent.length === 1) await gate;
  }, () => {});
  stream.appendAnswer("He");
  stream.appendAnswer("llo");
  stream.appendAnswer(" world");
  stream.appendReasoning("hmm");
  release();
  await stream.finish();
  assertEquals(sent, [
    ["answer", "He", 0, false],
    ["answer", "llo world", 2, false],
    ["reasoning", "hmm", 0, false],
    ["answer", "", 11, true],
  ]);
  assertEquals(stream.answer, "Hello world");
});

Deno.test("truncateAnswer() sends a chunk that cuts the answer back", async () => {
  const sent: [string, number][] = [];
  const stream = new AnswerStream((chunk) => {
    sent.push([chunk.content, chunk.offset]);
    return Promise.resolve();
  }, () => {});
  stream.appendAnswer("thinking out loud");
  await stream.flushed();
  stream.truncateAnswer(0);
  stream.appendAnswer("Answer");
  await stream.finish();
  assertEquals(stream.answer, "Answer");
  assertEquals(sent, [["thinking out loud", 0], ["", 0], ["Answer", 0], ["", 6]]);
});
