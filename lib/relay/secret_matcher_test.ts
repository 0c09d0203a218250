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

Deno.test("SecretMatcher.matches() refuses a prefix, a repetition and an extension of the secret", () => {
  const matcher = new SecretMatcher("abc");
  assert(matcher.matches("abc"));
  for (const wrong of ["a", "ab", "abca", "abcabc", "abcabcabc", "\u0000abc", "bca"]) {
    assertEquals(matcher.matches(wrong), false, JSON.stringify(wrong));
  }
});

Deno.test("SecretMatcher.matches() with an empty secret accepts only the empty string", () => {
  const matcher = new SecretMatcher("");
  assert(matcher.matches(""));
  assertEquals(matcher.matches("x"), false);
});

Deno.test("SecretMatcher.matches() reads every unit of a long candidate (no early exit on length)", () => {
  const secret = "svc-0123456789abcdef0123456789abcdef";
  const matcher = new SecretMatcher(secret);
  // The secret repeated: every unit matches cyclically, only the length differs.
  assertEquals(matcher.matches(secret.repeat(50)), false);
  assertEquals(matcher.matches(secret + secret.slice(0, 1)), false);
});
