import { assertEquals } from "../../tests/_assert.ts";
import { safeSources, sourcesMarkdown } from "./sources.ts";

Deno.test("only http(s) sources are linked, once each, with their titles as text", () => {
  const shown = safeSources([
    { url: "https://example.com/about", title: "About <b>Morgan</b>", kind: "page" },
    { url: "javascript:alert(1)", title: "x", kind: "page" },
    { url: "https://example.com/about", title: "Again", kind: "page" },
    { url: "data:text/html,hi", title: "x", kind: "web" },
    { url: "https://user:pw@example.com/", title: "creds", kind: "live" },
    { url: "https://github.com/m/r", title: "", kind: "github" },
    "not an object",
  ]);
  assertEquals(shown, [
    { href: "https://example.com/about", text: "About <b>Morgan</b>", kind: "page" },
    { href: "https://github.com/m/r", text: "github.com/m/r", kind: "GitHub" },
  ]);
  assertEquals(safeSources("nope"), []);
  assertEquals(sourcesMarkdown([{ url: "https://e.com/a", title: "A [b]", kind: "web" }]), [
    "- [A \\[b\\]](<https://e.com/a>) (web)",
  ]);
});
