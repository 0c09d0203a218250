import { assert, assertEquals } from "../../../tests/_assert.ts";
import { Logger } from "../../log.ts";
import { parseWorkerConfig } from "../config.ts";
import { ToolRegistry } from "../tool_registry.ts";
import { searchWeb } from "./search_web.ts";
import { slug, writeEnhancementRequest } from "./write_enhancement_request.ts";

function caller(env: Record<string, string>, tool = writeEnhancementRequest()) {
  const config = parseWorkerConfig({
    API_BASE_URL: "http://127.0.0.1:9",
    SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
    AGENT_API_URL: "http://127.0.0.1:9/v1",
    ...env,
  });
  const tools = new ToolRegistry([searchWeb, tool]);
  return async (name: string, args: unknown, chatId = "c") =>
    JSON.parse(
      (await tools.execute({ name, arguments: JSON.stringify(args) }, {
        config,
        chatId,
        log: new Logger("t", "error", () => {}),
        signal: new AbortController().signal,
      })).content,
    );
}

Deno.test("search_web queries a SearxNG-shaped API and caps the results", async () => {
  const seen: URL[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const url = new URL(req.url);
      seen.push(url);
      if (url.searchParams.get("q") === "broken") return new Response("nope", { status: 502 });
      const results = Array.from(
        { length: 20 },
        (_, i) => ({ title: `R${i}`, url: `https://r${i}.test`, content: "x" }),
      );
      return Response.json({ query: url.searchParams.get("q"), results });
    },
  );
  try {
    const call = caller({ SEARCH_API_URL: `http://127.0.0.1:${server.addr.port}/search` });
    const found = await call("search_web", { query: "deno kv", limit: 3 });
    assertEquals(found.results.map((r: { title: string }) => r.title), ["R0", "R1", "R2"]);
    assertEquals([seen[0]!.searchParams.get("q"), seen[0]!.searchParams.get("format")], [
      "deno kv",
      "json",
    ]);
    assertEquals((await call("search_web", { query: "broken" })).code, "search_failed");
    assertEquals((await call("search_web", { query: "x", limit: 50 })).code, "bad_arguments");
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("search_web says plainly when no search service is configured", async () => {
  assertEquals((await caller({})("search_web", { query: "x" })).code, "not_configured");
});

Deno.test("write_enhancement_request writes a safely named, capped file, a few per chat", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const call = caller({ ENHANCEMENT_DIR: dir });
    const saved = await call("write_enhancement_request", {
      title: "../../etc/passwd Dark mode!",
      details: "Please",
    });
    assert(/^\d{4}-\d{2}-\d{2}-etc-passwd-dark-mode-[0-9a-f]{8}$/.test(saved.id), saved.id);
    const files = [...Deno.readDirSync(dir)].map((f) => f.name);
    assertEquals(files, [`${saved.id}.md`]);
    assertEquals(
      (await call("write_enhancement_request", { title: "x".repeat(200), details: "y" })).code,
      "bad_arguments",
    );
    for (let i = 0; i < 2; i++) {
      await call("write_enhancement_request", { title: `More ${i}`, details: "z" });
    }
    assertEquals(
      (await call("write_enhancement_request", { title: "One more", details: "z" })).code,
      "rate_limited",
    );
    assertEquals(
      (await call("write_enhancement_request", { title: "Other chat", details: "z" }, "c2")).saved,
      true,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("write_enhancement_request caps all chats together per day, across restarts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const env = { ENHANCEMENT_DIR: dir, ENHANCEMENT_REQUESTS_PER_DAY: "4" };
    const call = caller(env);
    // Each new chat brings no new quota: four chats, one request each, fill the day.
    for (let i = 0; i < 4; i++) {
      const saved = await call(
        "write_enhancement_request",
        { title: `Wish ${i}`, details: "z" },
        `c${i}`,
      );
      assertEquals(saved.saved, true);
    }
    const refused = await call("write_enhancement_request", { title: "Wish", details: "z" }, "new");
    assertEquals(refused.code, "daily_limit");
    // A restarted worker (a new tool, no memory) counts the day's files, so it refuses too.
    const restarted = caller(env);
    assertEquals(
      (await restarted("write_enhancement_request", { title: "Again", details: "z" }, "n2")).code,
      "daily_limit",
    );
    // Parallel calls cannot overshoot: the count and the write happen one call at a time.
    const other = await Deno.makeTempDir({ dir });
    const parallel = caller({ ...env, ENHANCEMENT_DIR: other });
    const results = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) => parallel("write_enhancement_request", { title: `P ${i}`, details: "z" }, `p${i}`),
      ),
    );
    assertEquals(results.filter((r) => r.saved).length, 4);
    assertEquals([...Deno.readDirSync(other)].length, 4);
    // Yesterday's files do not count against today.
    const fresh = await Deno.makeTempDir({ dir });
    for (let i = 0; i < 4; i++) await Deno.writeTextFile(`${fresh}/2001-01-01-old-${i}.md`, "x");
    const saved = await caller({ ...env, ENHANCEMENT_DIR: fresh })("write_enhancement_request", {
      title: "Today",
      details: "z",
    });
    assertEquals(saved.saved, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("slug() keeps only safe characters", () => {
  assertEquals(slug("Héllo, World / ../x"), "hello-world-x");
  assertEquals(slug("!!!"), "request");
});
