import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertThrows } from "../../tests/_assert.ts";
import { DEFAULT_SITE_PROFILE } from "../protocol.ts";
import { loadSiteWords, parseSiteWords, SiteWordsError } from "./site_words.ts";

const CONTENT = fileURLToPath(new URL("../../content", import.meta.url));

Deno.test("the shipped content/welcome.md gives every site word and four suggestions", async () => {
  const words = (await loadSiteWords(CONTENT))!;
  assertEquals(words.siteName, "Morgan Example");
  assertEquals(words.suggestions.length, 4);
  assertEquals(words.suggestions[0], "What does Morgan run at home?");
  assert(words.greeting.startsWith("Hi, I'm **Terra**"), words.greeting);
  assert(words.gateText.includes("from the pages of this site."), "a wrapped value is joined");
  assert(words.accessHelp.includes("hello@example.com"));
  assertEquals(await loadSiteWords("/nonexistent-dir"), null, "no file: the relay's defaults");
});

Deno.test("parseSiteWords() keeps defaults for keys left out and names the line that is wrong", () => {
  const words = parseSiteWords("---\nsiteName: 'Ada'\n---\n");
  assertEquals(words, { ...DEFAULT_SITE_PROFILE, siteName: "Ada" });
  assertEquals(parseSiteWords("---\nsuggestions:\n---\n").suggestions, []);
  const bad: [string, string][] = [
    ["siteName: x\n", 'start with a "---"'],
    ["---\nsiteName: x\n", 'no closing "---"'],
    ["---\ncolour: red\n---\n", 'line 2: unknown key "colour"'],
    ["---\nsuggestions: a, b\n---\n", "line 2"],
    ["---\n%%%\n---\n", "line 2"],
    ["---\nsuggestions:\n  - a\n  - b\n  - c\n  - d\n  - e\n---\n", "suggestions"],
    [`---\nsiteName: ${"x".repeat(200)}\n---\n`, "siteName"],
  ];
  for (const [text, says] of bad) {
    const error = assertThrows(() => parseSiteWords(text, "w.md"), says);
    assert(error instanceof SiteWordsError, `${JSON.stringify(text)}: ${error.message}`);
  }
});
