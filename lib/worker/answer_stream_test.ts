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

Deno.test("resync() sends the text again from 0 once for every refused chunk in flight", async () => {
  // A relay that lost its text after "Hello": it refuses chunks past what it has.
  let relayHas = "Hello";
  const sent: [string, number][] = [];
  const stream = new AnswerStream((chunk) => {
    sent.push([chunk.content, chunk.offset]);
    if (chunk.offset > relayHas.length) {
      return Promise.reject(Object.assign(new Error("gap"), { code: "chunk_gap" }));
    }
    relayHas = relayHas.slice(0, chunk.offset) + chunk.content;
    return Promise.resolve();
  }, (error, chunk) => {
    if ((error as { code?: string }).code === "chunk_gap") stream.resync(chunk.kind, chunk.offset);
  });
  stream.appendAnswer("Hello");
  await stream.flushed();
  relayHas = ""; // the relay restarted with nothing of the answer
  stream.appendAnswer(" wide");
  await stream.flushed();
  stream.appendAnswer(" world");
  // A late refusal of a chunk the resend already covers changes nothing.
  stream.resync("answer", 5);
  await stream.finish();
  assertEquals(relayHas, "Hello wide world");
  assertEquals(sent, [["Hello", 0], [" wide", 5], ["Hello wide", 0], [" world", 10], ["", 16]]);
});
