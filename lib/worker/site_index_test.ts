import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { passages, SiteIndex, snippet } from "./site_index.ts";

const SITE = fileURLToPath(new URL("../../content/site", import.meta.url));

Deno.test("search ranks the passage that answers ahead of pages that merely mention a word", async () => {
  const index = new SiteIndex(SITE);
  const power = await index.search("how much electricity does the GPU use");
  assertEquals([power[0]!.title, power[0]!.heading], [
    "Self-hosting a language model on one GPU",
    "What it costs",
  ]);
  assert(power[0]!.snippet.includes("watts"));

  const retries = await index.search("does it retry failed jobs");
  assertEquals([retries[0]!.title, retries[0]!.heading], ["Pipewright", "Why not cron"]);

  const ports = await index.search("inbound port GPU box");
  assertEquals(ports[0]!.heading, "How the webchat works");
});

Deno.test("pages are found by URL or path, and unknown ones are null", async () => {
  const index = new SiteIndex(SITE);
  assertEquals((await index.page("https://example.com/about"))?.title, "About Morgan");
  assertEquals((await index.page("/projects/lantern"))?.title, "Lantern");
  assertEquals(await index.page("../../etc/passwd"), null);
  assertEquals((await index.list()).length, 6);
});

Deno.test("the index follows changes to pages.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.md`, "# A\n\nApples are red.");
    await Deno.writeTextFile(
      `${dir}/pages.json`,
      JSON.stringify([{ file: "a.md", url: "https://x.test/a", title: "A", fetchedAt: "t" }]),
    );
    const index = new SiteIndex(dir);
    assertEquals((await index.search("apples")).length, 1);
    await Deno.writeTextFile(`${dir}/b.md`, "# B\n\nBananas are yellow.");
    await new Promise((r) => setTimeout(r, 20));
    await Deno.writeTextFile(
      `${dir}/pages.json`,
      JSON.stringify([{ file: "b.md", url: "https://x.test/b", title: "B", fetchedAt: "t" }]),
    );
    assertEquals((await index.search("bananas"))[0]?.url, "https://x.test/b");
    assertEquals(await index.search("apples"), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("passages() cuts at headings and snippet() centres on the match", () => {
  assertEquals(passages("intro\n# T\n\nfirst\n## H\nsecond line\nthird", "Page"), [
    { heading: "Page", text: "intro" },
    { heading: "T", text: "first" },
    { heading: "H", text: "second line third" },
  ]);
  const text = "x ".repeat(300) + "needle " + "y ".repeat(300);
  const s = snippet(text, ["needle"]);
  assert(s.includes("needle") && s.startsWith("…") && s.endsWith("…"));
});
