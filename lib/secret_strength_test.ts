import { assertEquals } from "../tests/_assert.ts";
import { EXAMPLE_SECRETS, secretWeakness } from "./secret_strength.ts";

const ROOT = new URL("../", import.meta.url);
const SECRET_NAMES = ["CHAT_PASSWORD", "SERVICE_TOKEN", "ADMIN_TOKEN", "HMAC_SECRET"];

/** Every `NAME=value` (and `"accessCode":"value"`) the operator-facing docs show for a secret. */
function documentedSecrets(): { file: string; value: string; role: "access_code" | "token" }[] {
  const files = ["README.md", "systemd/relay.env.example", "systemd/worker.env.example"];
  for (const entry of Deno.readDirSync(new URL("docs/", ROOT))) {
    if (entry.name.endsWith(".md")) files.push(`docs/${entry.name}`);
  }
  const found: { file: string; value: string; role: "access_code" | "token" }[] = [];
  for (const file of files) {
    const text = Deno.readTextFileSync(new URL(file, ROOT));
    const assignment = new RegExp(`\\b(${SECRET_NAMES.join("|")})=([^\\s"'$]+)`, "g");
    for (const [, name, value] of text.matchAll(assignment)) {
      found.push({ file, value: value!, role: name === "CHAT_PASSWORD" ? "access_code" : "token" });
    }
    for (const [, value] of text.matchAll(/"accessCode":\s*"([^"$]+)"/g)) {
      found.push({ file, value: value!, role: "access_code" });
    }
  }
  return found;
}

Deno.test("every secret the docs and env examples show is refused", () => {
  const found = documentedSecrets();
  assertEquals(found.length >= 6, true, `too few documented secrets found: ${found.length}`);
  for (const { file, value, role } of found) {
    assertEquals(secretWeakness(value, role) !== null, true, `${file}: "${value}" is accepted`);
  }
});

Deno.test("the example list itself is refused, in any case", () => {
  for (const value of EXAMPLE_SECRETS) {
    assertEquals(secretWeakness(value, "token") !== null, true, value);
    assertEquals(secretWeakness(value.toUpperCase(), "access_code") !== null, true, value);
  }
});

Deno.test("secretWeakness() refuses placeholder words, short and low-variety tokens", () => {
  const weak = [
    "replace-me-0123456789abcdef0123456789abcdef",
    "my-token-goes-here-0123456789abcdef0123456789",
    "Xk2-your-token-9Qm3Lp0Zr7Vt4Ws1Nb8Hc6Jd5",
    "0123456789abcdef0123456789", // 26 characters
    "a".repeat(48),
    "ab".repeat(24),
    "0101010101010101010101010101010101010101",
    "my-relay-service-secret-for-the-terrarium",
  ];
  for (const value of weak) {
    assertEquals(secretWeakness(value, "token") !== null, true, value);
  }
});

Deno.test("secretWeakness() accepts random tokens and the tests' own secrets", () => {
  for (let i = 0; i < 200; i++) {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    // `openssl rand -hex 24`, as the env examples suggest; placeholder fragments cannot
    // occur in hex.
    assertEquals(secretWeakness(hex, "token"), null, hex);
  }
  for (
    const value of [
      "svc-0123456789abcdef0123456789abcdef",
      "adm-0123456789abcdef0123456789abcdef",
      "hmac-0123456789abcdef0123456789abcdef",
    ]
  ) {
    assertEquals(secretWeakness(value, "token"), null, value);
  }
});

Deno.test("secretWeakness() holds access codes to 8 varied characters", () => {
  for (const code of ["short", "aaaaaaaa", "12345678", "abcdefgh", "password", "pick-a-code-1"]) {
    assertEquals(secretWeakness(code, "access_code") !== null, true, code);
  }
  for (const code of ["open-sesame-42", "a-different-code-77", "blue heron 1987"]) {
    assertEquals(secretWeakness(code, "access_code"), null, code);
  }
});
