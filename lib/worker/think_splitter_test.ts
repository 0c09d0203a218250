import { assertEquals } from "../../tests/_assert.ts";
import { type SplitOutput, ThinkSplitter } from "./think_splitter.ts";

/** Feeds `chunks` and collects what a consumer would show, retractions applied. */
function run(chunks: string[]) {
  const splitter = new ThinkSplitter();
  const seen = { answer: "", reasoning: "", retracts: 0, shownAsAnswer: "" };
  const apply = (out: SplitOutput) => {
    if (out.retractAnswer) {
      seen.retracts++;
      seen.answer = "";
    }
    seen.reasoning += out.reasoning;
    seen.answer += out.answer;
    seen.shownAsAnswer += out.answer;
  };
  for (const chunk of chunks) apply(splitter.push(chunk));
  apply(splitter.end());
  return seen;
}

/** Every way to cut `text` into two chunks, plus one character per chunk. */
function splits(text: string): string[][] {
  const out = [[...text]];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

Deno.test("ThinkSplitter passes content without tags through as answer", () => {
  const seen = run(["Hello ", "**world**", " a < b and c <th", "ing"]);
  assertEquals(seen, {
    answer: "Hello **world** a < b and c <thing",
    reasoning: "",
    retracts: 0,
    shownAsAnswer: "Hello **world** a < b and c <thing",
  });
});

Deno.test("ThinkSplitter separates <think> blocks however the tags are split", () => {
  const text = "<think>Weigh it up.</think>\n\nThe answer.";
  for (const chunks of splits(text)) {
    const seen = run(chunks);
    assertEquals(
      [seen.reasoning, seen.answer, seen.retracts],
      ["Weigh it up.", "The answer.", 0],
      JSON.stringify(chunks),
    );
  }
});

Deno.test("ThinkSplitter never shows a partial tag as answer text", () => {
  const splitter = new ThinkSplitter();
  assertEquals(splitter.push("Intro <th"), {
    answer: "Intro ",
    reasoning: "",
    retractAnswer: false,
  });
  assertEquals(splitter.push("ink>deep"), { answer: "", reasoning: "deep", retractAnswer: false });
  assertEquals(splitter.push(" thought</thi"), {
    answer: "",
    reasoning: " thought",
    retractAnswer: false,
  });
  assertEquals(splitter.push("nk>Done"), { answer: "Done", reasoning: "", retractAnswer: false });
});

Deno.test("ThinkSplitter retracts the answer when only a late </think> appears", () => {
  const text = "Let me think about it.</think>\n\nHere it is.";
  for (const chunks of splits(text)) {
    const seen = run(chunks);
    assertEquals([seen.reasoning, seen.answer], ["Let me think about it.", "Here it is."]);
    // A retraction is only needed when reasoning had already been shown as answer.
    const shownEarly = !chunks[0]!.includes("</think>") && chunks[0]!.length > 0;
    assertEquals(seen.retracts, shownEarly ? 1 : 0, JSON.stringify(chunks));
  }
});

Deno.test("ThinkSplitter treats a </think> after a complete block as text", () => {
  const seen = run(["<think>a</think>b ", "</think> c"]);
  assertEquals([seen.reasoning, seen.answer, seen.retracts], ["a", "b </think> c", 0]);
});

Deno.test("ThinkSplitter keeps an unclosed <think> as reasoning and flushes held text at the end", () => {
  assertEquals(run(["<think>never closed"]).reasoning, "never closed");
  const seen = run(["ends with <"]);
  assertEquals(seen.answer, "ends with <");
});
