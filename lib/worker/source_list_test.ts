import { fileURLToPath } from "node:url";
import { assertEquals } from "../../tests/_assert.ts";
import { Logger } from "../log.ts";
import { parseWorkerConfig } from "./config.ts";
import { SourceList } from "./source_list.ts";
import { ToolRegistry } from "./tool_registry.ts";
import { allTools } from "./tools/mod.ts";

const CONTENT = fileURLToPath(new URL("../../content", import.meta.url));

Deno.test("SourceList keeps http(s) URLs once each, in order, at most eight", () => {
  const list = new SourceList();
  list.add([
    { url: "https://a.test/1", title: "", kind: "page" },
    { url: "javascript:alert(1)", title: "x", kind: "page" },
    { url: "ftp://a.test/", title: "x", kind: "live" },
    { url: "https://a.test/1", title: "One", kind: "live" },
  ]);
  assertEquals(list.list(), [{ url: "https://a.test/1", title: "One", kind: "page" }]);
  list.add(
    Array.from({ length: 20 }, (_, i) => ({ url: `https://b.test/${i}`, kind: "web" as const })),
  );
  assertEquals(list.size, 8);
});

Deno.test("the site, GitHub and live tools record the pages they returned; failures and listings do not", async () => {
  const config = parseWorkerConfig({
    API_BASE_URL: "http://127.0.0.1:9",
    SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
    AGENT_API_URL: "http://127.0.0.1:9/v1",
    CONTENT_DIR: CONTENT,
  });
  const registry = new ToolRegistry(allTools(config));
  const sources = new SourceList();
  const context = {
    config,
    chatId: "c",
    log: new Logger("t", "error", () => {}),
    signal: new AbortController().signal,
    sources,
  };
  const call = (name: string, args: unknown) =>
    registry.execute({ name, arguments: JSON.stringify(args) }, context);
  await call("search_site", { query: "What does Morgan run at home?" });
  await call("list_site_pages", {});
  await call("list_github_repos", {});
  await call("get_profile", {});
  await call("fetch_site_page", { url: "/contact" });
  await call("get_github_repo", { repo: "lantern", path: "docs/configuration.md" });
  await call("get_github_repo", { repo: "nope" });
  await call("fetch_live_page", { url: "https://not-allowed.test/" });
  assertEquals(sources.list().map((s) => [s.kind, s.url, s.title]), [
    ["page", "https://example.com/about", "About Morgan"],
    ["page", "https://example.com/projects/terrarium", "Terrarium"],
    [
      "page",
      "https://example.com/blog/self-hosting-llms",
      "Self-hosting a language model on one GPU",
    ],
    ["page", "https://example.com/contact", "Contact"],
    [
      "github",
      "https://github.com/morgan-example/lantern/blob/HEAD/docs/configuration.md",
      "lantern/docs/configuration.md",
    ],
  ]);
});
