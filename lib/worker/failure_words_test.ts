import { assert, assertEquals } from "../../tests/_assert.ts";
import { AgentError } from "./agent_error.ts";
import { FAILURE_SENTENCES, failureCode, failureWords } from "./failure_words.ts";

Deno.test("failureCode() names model failures by kind and keeps a typed error's own code", () => {
  assertEquals(failureCode(new AgentError("unavailable", "HTTP 500")), "model_unavailable");
  assertEquals(failureCode(new AgentError("stream_cut", "cut")), "model_stream_cut");
  const deadline = Object.assign(new Error("Turn deadline passed"), { code: "turn_deadline" });
  assertEquals(failureCode(deadline), "turn_deadline");
  assertEquals(failureCode(Object.assign(new Error("x"), { code: "Not A Code!" })), "internal");
  assertEquals(failureCode(new TypeError("boom")), "internal");
  assertEquals(failureCode(null), "internal");
});

Deno.test("failureWords() is a whole sentence for the visitor and one of FAILURE_SENTENCES", () => {
  const errors = [
    new AgentError("rate_limited", "429"),
    new AgentError("aborted", "stopped"),
    Object.assign(new Error("late"), { code: "turn_deadline" }),
    new Error("The model API failed (HTTP 500) at /v1"),
  ];
  for (const error of errors) {
    const words = failureWords(error);
    assert(FAILURE_SENTENCES.has(words), words);
    assert(/^[A-Z].*\.$/.test(words) && !words.includes("HTTP"), words);
  }
  assert(failureWords(errors[2]).includes("too long"));
});
