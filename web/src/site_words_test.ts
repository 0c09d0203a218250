import { assertEquals } from "../../tests/_assert.ts";
import { FALLBACK_WORDS, siteWords } from "./site_words.ts";

Deno.test("site words keep what is well formed and fall back for the rest", () => {
  const words = siteWords({
    siteName: "Morgan's site",
    assistantName: 42,
    suggestions: ["One?", "", 7, "Two?", "Three?", "Four?", "Five?"],
  });
  assertEquals(words.siteName, "Morgan's site");
  assertEquals(words.assistantName, FALLBACK_WORDS.assistantName);
  assertEquals(words.suggestions, ["One?", "Two?", "Three?", "Four?"]);
  assertEquals(siteWords(null), FALLBACK_WORDS);
});
