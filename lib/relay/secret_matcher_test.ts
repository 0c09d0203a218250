import { assert, assertEquals } from "../../tests/_assert.ts";
import { SecretMatcher } from "./secret_matcher.ts";

Deno.test("SecretMatcher.matches() accepts the secret and nothing else", () => {
  const matcher = new SecretMatcher("svc-0123456789abcdef0123456789abcdef");
  assert(matcher.matches("svc-0123456789abcdef0123456789abcdef"));
  for (
    const wrong of [
      "",
      "svc-0123456789abcdef0123456789abcdeg",
      "svc-0123456789abcdef0123456789abcdef ",
      "svc-0123456789abcdef0123456789abcde",
      "SVC-0123456789ABCDEF0123456789ABCDEF",
    ]
  ) {
    assertEquals(matcher.matches(wrong), false, JSON.stringify(wrong));
  }
});

Deno.test("SecretMatcher.matches() compares text, not UTF-16 length alone", () => {
  const matcher = new SecretMatcher("päss-wörd-ünicode-0123456789");
  assert(matcher.matches("päss-wörd-ünicode-0123456789"));
  assertEquals(matcher.matches("pass-word-unicode-0123456789"), false);
});
