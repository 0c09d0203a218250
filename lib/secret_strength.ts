/**
 * Whether a configured secret is a real one (issue 11, finding 9): not one of this
 * repository's own example values, free of placeholder words, and long and varied enough
 * for its role. An access code is typed by visitors, so it may be words; a token is only
 * ever pasted, so it must look random.
 */

/** What a secret is for, which sets how strong it must be. */
export type SecretRole = "access_code" | "token";

/** The least length per role. */
export const MIN_SECRET_LENGTH: Record<SecretRole, number> = { access_code: 8, token: 32 };

/**
 * Every secret value that README.md, `systemd/*.env.example` and the demo show. A test
 * (`secret_strength_test.ts`) reads those files and fails when one is missing here, so a new
 * example cannot become a working secret.
 */
export const EXAMPLE_SECRETS: readonly string[] = [
  "pick-an-access-code",
  "choose-an-access-code",
  "another-long-random-value-here",
  "replace-with-48-random-hex-characters",
  "replace-with-another-48-random-hex-characters",
  "the-same-value-as-the-relay",
  "the-relays-service-token",
  "your-service-token",
  "terra-demo",
  "demo-service-token-not-for-production",
];

/**
 * Fragments that mark an unchanged template. Case-insensitive; random base64url of 43
 * characters holds one of these about once in 10^5 draws, and `deno task init-env` draws again.
 */
export const PLACEHOLDER_WORDS: readonly string[] = [
  "replace",
  "choose",
  "pick-",
  "your-",
  "your_",
  "-here",
  "_here",
  "example",
  "changeme",
  "change-me",
  "change_me",
  "placeholder",
  "sample",
  "dummy",
  "fixme",
  "todo",
  "xxxx",
  "not-for-production",
  "same-value",
  "random-value",
  "access-code",
  "service-token",
  "model-name",
];

/** Access codes people pick first; refused whatever their length. */
const COMMON_CODES = new Set([
  "password",
  "password1",
  "12345678",
  "123456789",
  "1234567890",
  "qwertyui",
  "qwertyuiop",
  "letmein1",
  "iloveyou",
  "11111111",
  "00000000",
  "abcdefgh",
  "terrarium",
]);

/** The least estimated entropy, in bits, of a token (Shannon entropy of its characters × length). */
const MIN_TOKEN_BITS = 80;
const MIN_TOKEN_DISTINCT = 8;
const MIN_CODE_DISTINCT = 5;

/** The placeholder fragment `value` contains, if any. */
export function placeholderIn(value: string): string | null {
  const lower = value.toLowerCase();
  return PLACEHOLDER_WORDS.find((word) => lower.includes(word)) ?? null;
}

/** Shannon entropy of `value`'s characters times its length: a rough upper bound on its bits. */
export function estimatedBits(value: string): number {
  const counts = new Map<string, number>();
  for (const char of value) counts.set(char, (counts.get(char) ?? 0) + 1);
  const n = [...value].length;
  let perChar = 0;
  for (const count of counts.values()) perChar -= (count / n) * Math.log2(count / n);
  return perChar * n;
}

/** Whether most neighbouring characters step by +1 or -1 ("12345678", "hgfedcba"). */
function mostlySequential(value: string): boolean {
  let steps = 0;
  for (let i = 1; i < value.length; i++) {
    if (Math.abs(value.charCodeAt(i) - value.charCodeAt(i - 1)) === 1) steps++;
  }
  return steps > (value.length - 1) * 0.6;
}

/** Three or more lowercase words joined by separators ("my-relay-service-token"): typed, not drawn. */
function readsLikeWords(value: string): boolean {
  const parts = value.split(/[-_.\s]+/).filter(Boolean);
  return parts.length >= 3 && parts.every((part) => /^[a-z]+$/.test(part));
}

/**
 * Why `value` is not good enough for `role` (a sentence fragment), or null when it is.
 * `examples` are refused verbatim (the repository's own, by default).
 */
export function secretWeakness(
  value: string,
  role: SecretRole,
  examples: readonly string[] = EXAMPLE_SECRETS,
): string | null {
  const trimmed = value.trim();
  const lower = trimmed.toLowerCase();
  if (examples.some((example) => example.toLowerCase() === lower)) {
    return "is an example value from this repository's documentation";
  }
  const word = placeholderIn(trimmed);
  if (word) return `looks like a placeholder (it contains "${word}")`;
  const min = MIN_SECRET_LENGTH[role];
  if ([...trimmed].length < min) return `is too short (at least ${min} characters)`;
  const distinct = new Set(trimmed).size;
  if (role === "access_code") {
    if (COMMON_CODES.has(lower)) return "is one of the most common passwords";
    if (distinct < MIN_CODE_DISTINCT || mostlySequential(trimmed)) {
      return `is too easy to guess (use at least ${MIN_CODE_DISTINCT} different characters, not a run)`;
    }
    return null;
  }
  if (readsLikeWords(trimmed)) return "reads like words, not random characters";
  if (distinct < MIN_TOKEN_DISTINCT || estimatedBits(trimmed) < MIN_TOKEN_BITS) {
    return "is not random enough";
  }
  return null;
}

/** What to do about a weak secret, appended to each refusal. */
export const SECRET_FIX_HINT =
  "run `deno task init-env` to write env files with random secrets, or use `openssl rand -hex 24`";
