import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { assertEquals } from "../../../tests/_assert.ts";
import { Logger } from "../../log.ts";
import { parseWorkerConfig } from "../config.ts";
import { ToolRegistry } from "../tool_registry.ts";
import { githubTools } from "./github_tools.ts";

const CONTENT = fileURLToPath(new URL("../../../content", import.meta.url));

function registry(contentDir: string) {
  const config = parseWorkerConfig({
    API_BASE_URL: "http://127.0.0.1:9",
    SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
    AGENT_API_URL: "http://127.0.0.1:9/v1",
    CONTENT_DIR: contentDir,
  });
  const tools = new ToolRegistry(githubTools(contentDir));
  const context = {
    config,
    chatId: "c",
    log: new Logger("t", "error", () => {}),
    signal: new AbortController().signal,
  };
  return async (name: string, args: unknown) =>
    JSON.parse((await tools.execute({ name, arguments: JSON.stringify(args) }, context)).content);
}

Deno.test("list_github_repos and get_github_repo read the cached GitHub data", async () => {
  const call = registry(CONTENT);
  const { repos } = await call("list_github_repos", {});
  assertEquals(repos.map((r: { name: string }) => r.name), [
    "lantern",
    "pipewright",
    "terrarium-webchat",
  ]);
  const readme = await call("get_github_repo", { repo: "Lantern" });
  assertEquals(readme.text.startsWith("# lantern"), true);
  const doc = await call("get_github_repo", { repo: "lantern", path: "docs/configuration.md" });
  assertEquals(doc.text.includes("lantern.toml"), true);
});

Deno.test("get_github_repo refuses traversal, unlisted files and planted symlinks", async () => {
  const call = registry(CONTENT);
  for (
    const path of ["../pipewright/README.md", "../../persona.md", "/etc/passwd", "src/main.ts"]
  ) {
    assertEquals(
      (await call("get_github_repo", { repo: "lantern", path })).code,
      "not_cached",
      path,
    );
  }
  assertEquals((await call("get_github_repo", { repo: "nope" })).code, "not_found");

  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "github", "evil"), { recursive: true });
    await Deno.writeTextFile(join(dir, "secret.txt"), "secret");
    await Deno.symlink(join(dir, "secret.txt"), join(dir, "github", "evil", "README.md"));
    await Deno.writeTextFile(
      join(dir, "github", "repos.json"),
      JSON.stringify([{ name: "evil", url: "https://x.test", files: ["README.md"] }]),
    );
    assertEquals((await registry(dir)("get_github_repo", { repo: "evil" })).code, "not_cached");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
