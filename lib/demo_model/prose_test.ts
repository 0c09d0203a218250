import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { SiteIndex } from "../worker/site_index.ts";
import { proseFromToolResults, sentences } from "./prose.ts";

const SITE = fileURLToPath(new URL("../../content/site", import.meta.url));

Deno.test("the README's question gets sentences from the top pages, each linked", async () => {
  const question = "What does Morgan run at home?";
  const results = await new SiteIndex(SITE).search(question, 5);
  const answer = proseFromToolResults([{
    name: "search_site",
    content: JSON.stringify({ results }),
    arguments: JSON.stringify({ query: question }),
  }], question);
  assert(answer.includes("modest hardware"), answer);
  assert(answer.includes("([About Morgan](https://example.com/about))"), answer);
  assert(answer.includes("(https://example.com/projects/terrarium)"), answer);
  // One link per page: the two About hits are one source.
  assertEquals(answer.match(/\]\(https:\/\/example\.com\/about\)/g)?.length, 1, answer);
  assert(!answer.includes('{"') && !answer.includes("\\n"), answer);
  assertEquals(
    answer,
    proseFromToolResults([{
      name: "search_site",
      content: JSON.stringify({ results }),
      arguments: JSON.stringify({ query: question }),
    }], question),
    "deterministic",
  );
});

Deno.test("tool errors become a sentence and hostile results never come out as JSON or bad links", () => {
  const answer = proseFromToolResults([
    {
      name: "fetch_live_page",
      content: JSON.stringify({
        error: 'The host "evil.test" is not allowed',
        code: "not_allowed",
      }),
    },
    {
      name: "fetch_site_page",
      content: JSON.stringify({
        url: "javascript:alert(1)",
        title: "Click [me](javascript:alert(2))",
        text: 'Config is {"a": 1} in `code`. <script>x</script> Second sentence here.',
      }),
    },
    {
      name: "search_site",
      content: JSON.stringify({
        results: [{ url: "https://a.test/x (y)", title: "A ] title", snippet: '{"k":"v"}' }],
      }),
    },
    {
      name: "fetch_site_page",
      content: JSON.stringify({
        truncated: true,
        excerpt: '{"url":"https://a.test/","title":"T","text":"Cut off here',
      }),
    },
    { name: "mystery", content: '{"name":"Morgan","nested":{"x":"{\\"y\\":1}"}}' },
    { name: "search_site", content: "not json at all" },
  ], "q");
  assert(
    answer.startsWith('I could not fetch that page: the host "evil.test" is not allowed.'),
    answer,
  );
  assert(!answer.includes('{"'), answer);
  assert(!answer.includes("javascript:"), answer);
  assert(!answer.includes("<script>"), answer);
  assert(answer.includes("(https://a.test/x%20%28y%29)"), answer);
  assert(answer.includes("Second sentence here."), "no citation without a usable URL");
  assert(answer.includes("Cut off here ([T](https://a.test/))."), answer);
  assertEquals(answer.split("\n\n").length, 6, "a paragraph per result");
  const refusal = { name: "fetch_live_page", content: '{"error":"Stopped","code":"aborted"}' };
  assertEquals(
    proseFromToolResults([refusal, refusal, refusal], "q"),
    "I could not fetch that page: stopped.",
    "the same sentence once",
  );
});

Deno.test("sentences() keeps whole sentences and does not split inside an address", () => {
  assertEquals(
    sentences("Write to a@b.com today. Then wait. Then more."),
    "Write to a@b.com today. Then wait.",
  );
  assertEquals(sentences("…middle of a thought and no end"), "middle of a thought and no end.");
  assertEquals(sentences("# Title\n\nBody text.\n\n    code here"), "Body text.");
});
