/** `deno task refresh-content` against a local site and a fake GitHub API, under its own flags. */
import { join } from "node:path";
import { runArgs } from "../lib/launch.ts";
import { CONTENT_TEMPLATES, TEMPLATE_MARKER } from "../lib/refresh/templates.ts";
import { SiteIndex } from "../lib/worker/site_index.ts";
import { assert, assertEquals } from "./_assert.ts";
import { spawnDeno } from "./_process.ts";
import { TEST_SECRETS } from "./_relay_process.ts";
import { writeWorkerEnv } from "./_worker_process.ts";

const PAGE = (title: string, body: string, links: string[]) =>
  `<html><head><title>${title}</title></head><body><nav><a href="/">Home</a></nav><main><h1>${title}</h1>` +
  `<p>${body}</p>${
    links.map((l) => `<p><a href="${l}">${l}</a></p>`).join("")
  }</main></body></html>`;

function startFakes(githubMode: "ok" | "fail" | "rate_limited" = "ok") {
  const ac = new AbortController();
  const requested: string[] = [];
  const site = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      requested.push(path);
      const html = (body: string) =>
        new Response(body, { headers: { "content-type": "text/html" } });
      if (path === "/") {
        return html(
          PAGE("Home", "Welcome to the garden of small tools.", [
            "/docs/a",
            "/private/x",
            "https://elsewhere.example/",
          ]),
        );
      }
      if (path === "/docs/a") {
        return html(
          PAGE("Doc A", "Apricots ripen in July in the orchard.", ["/docs/b"]),
        );
      }
      if (path === "/docs/b") {
        return html(
          PAGE("Doc B", "Beans climb the trellis all summer.", ["/docs/c"]),
        );
      }
      if (path === "/docs/c") return html(PAGE("Doc C", "Too deep to be crawled.", []));
      if (path === "/private/x") return html(PAGE("Private", "Not on the allowlist.", []));
      return new Response("no", { status: 404 });
    },
  );
  const github = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      if (githubMode === "fail") return new Response("boom", { status: 500 });
      if (githubMode === "rate_limited") {
        return new Response("{}", {
          status: 403,
          headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1795600000" },
        });
      }
      if (path === "/users/gardener/repos") {
        return Response.json([
          {
            name: "trellis",
            description: "Climbing frames",
            html_url: "https://github.com/gardener/trellis",
            language: "Rust",
            stargazers_count: 7,
            topics: ["garden"],
            pushed_at: "2026-11-01T00:00:00Z",
          },
          { name: "forked", fork: true, html_url: "x" },
        ]);
      }
      if (path === "/repos/gardener/trellis/readme") {
        return new Response(
          "# trellis\n\nA frame for beans.",
        );
      }
      return new Response("{}", { status: 404 });
    },
  );
  return {
    siteUrl: `http://127.0.0.1:${site.addr.port}`,
    githubUrl: `http://127.0.0.1:${github.addr.port}`,
    requested,
    async close() {
      ac.abort();
      await Promise.all([site.finished, github.finished]);
    },
  };
}

async function runRefresh(env: Record<string, string>, dir: string) {
  const envFile = await writeWorkerEnv(dir, env);
  const child = spawnDeno(runArgs("refresh-content", envFile));
  const status = await child.status;
  return { code: status.code, output: child.lines.join("\n") };
}

Deno.test("refresh-content crawls the allowed paths and fetches GitHub into the layout the tools read", async () => {
  const fakes = startFakes();
  const dir = await Deno.makeTempDir({ prefix: "terrarium-refresh-" });
  try {
    const content = join(dir, "content");
    const { code, output } = await runRefresh({
      CONTENT_DIR: content,
      REFRESH_SITE_URL: `${fakes.siteUrl}/`,
      REFRESH_PATHS: "/docs",
      REFRESH_MAX_DEPTH: "2",
      GITHUB_OWNER: "gardener",
      GITHUB_API_URL: fakes.githubUrl,
    }, dir);
    assertEquals(code, 0, output);
    assert(output.includes("refresh: page 1/"), "progress is shown");
    const index = new SiteIndex(join(content, "site"));
    assertEquals((await index.list()).map((p) => p.title).sort(), ["Doc A", "Doc B", "Home"]);
    assertEquals((await index.search("when do apricots ripen"))[0]?.title, "Doc A");
    assert(!fakes.requested.includes("/docs/c"), "the depth limit held");
    assert(!fakes.requested.includes("/private/x"), "the path allowlist held");
    const repos = JSON.parse(await Deno.readTextFile(join(content, "github", "repos.json")));
    assertEquals(repos.map((r: { name: string }) => r.name), ["trellis"]);
    assertEquals(
      await Deno.readTextFile(join(content, "github", "trellis", "README.md")),
      "# trellis\n\nA frame for beans.",
    );
  } finally {
    await fakes.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failed refresh leaves the old cache intact", async () => {
  const fakes = startFakes("fail");
  const dir = await Deno.makeTempDir({ prefix: "terrarium-refresh-" });
  try {
    const content = join(dir, "content");
    await Deno.mkdir(join(content, "github"), { recursive: true });
    await Deno.writeTextFile(join(content, "github", "repos.json"), '[{"name":"old"}]');
    const { code, output } = await runRefresh({
      CONTENT_DIR: content,
      GITHUB_OWNER: "gardener",
      GITHUB_API_URL: fakes.githubUrl,
    }, dir);
    assertEquals(code, 1);
    assert(output.includes("GitHub answered 500"), output);
    assertEquals(
      await Deno.readTextFile(join(content, "github", "repos.json")),
      '[{"name":"old"}]',
    );
    assertEquals(
      [...Deno.readDirSync(content)].map((e) => e.name),
      ["github"],
      "no half-written folder left",
    );
  } finally {
    await fakes.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a used-up GitHub rate limit stops the refresh with a clear message", async () => {
  const fakes = startFakes("rate_limited");
  const dir = await Deno.makeTempDir({ prefix: "terrarium-refresh-" });
  try {
    const { code, output } = await runRefresh({
      CONTENT_DIR: join(dir, "content"),
      GITHUB_OWNER: "gardener",
      GITHUB_API_URL: fakes.githubUrl,
    }, dir);
    assertEquals(code, 1);
    assert(output.includes("rate limit is used up") && output.includes("GITHUB_TOKEN"), output);
  } finally {
    await fakes.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("refresh-content reads a local web root instead of crawling", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-refresh-" });
  try {
    const root = join(dir, "www");
    await Deno.mkdir(join(root, "blog"), { recursive: true });
    await Deno.writeTextFile(
      join(root, "index.html"),
      PAGE("Home", "Hello from the web root.", []),
    );
    await Deno.writeTextFile(
      join(root, "blog", "post.html"),
      PAGE("Post", "Figs need a warm wall.", []),
    );
    const content = join(dir, "content");
    const env = {
      CONTENT_DIR: content,
      REFRESH_SITE_URL: "https://garden.example",
      REFRESH_WEB_ROOT: root,
    };
    const { code, output } = await runRefresh(env, dir);
    assertEquals(code, 0, output);
    // A plain static host serves blog/post.html at /blog/post.html: the URL keeps it.
    const pages = await new SiteIndex(join(content, "site")).list();
    assertEquals(pages.map((p) => p.url).sort(), [
      "https://garden.example/",
      "https://garden.example/blog/post.html",
    ]);
    // For a host that serves clean URLs, the operator says so.
    const clean = await runRefresh({ ...env, REFRESH_CLEAN_URLS: "true" }, dir);
    assertEquals(clean.code, 0, clean.output);
    const cleanPages = await new SiteIndex(join(content, "site")).list();
    assertEquals(cleanPages.map((p) => p.url).sort(), [
      "https://garden.example/",
      "https://garden.example/blog/post",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("refresh-content writes a complete content dir: templates for missing files, never over the operator's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-refresh-" });
  try {
    const root = join(dir, "www");
    await Deno.mkdir(root, { recursive: true });
    await Deno.writeTextFile(join(root, "index.html"), PAGE("Home", "Hello.", []));
    const content = join(dir, "content");
    const env = {
      CONTENT_DIR: content,
      REFRESH_SITE_URL: "https://garden.example",
      REFRESH_WEB_ROOT: root,
    };
    const first = await runRefresh(env, dir);
    assertEquals(first.code, 0, first.output);
    for (const file of Object.keys(CONTENT_TEMPLATES)) {
      const text = await Deno.readTextFile(join(content, file));
      assert(text.startsWith(TEMPLATE_MARKER), `${file} is the template`);
      assert(first.output.includes(`${file}: template written`), first.output);
    }
    // The worker starts on it (its start-up checks pass) …
    const workerEnvFile = await writeWorkerEnv(dir, {
      API_BASE_URL: "http://127.0.0.1:9",
      SERVICE_TOKEN: TEST_SECRETS.SERVICE_TOKEN,
      AGENT_API_URL: "http://127.0.0.1:9/v1",
      CONTENT_DIR: content,
      ENHANCEMENT_DIR: join(dir, "enhancements"),
    });
    const check = spawnDeno(runArgs("worker", workerEnvFile, ["--check"]));
    assertEquals((await check.status).code, 0, check.lines.join("\n"));

    // … and the operator's own words are never replaced.
    const mine = "You are Terra, on Robin's garden site.\n";
    await Deno.writeTextFile(join(content, "persona.md"), mine);
    const second = await runRefresh(env, dir);
    assertEquals(second.code, 0, second.output);
    assertEquals(await Deno.readTextFile(join(content, "persona.md")), mine);
    assert(!second.output.includes("persona.md: template written"), second.output);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
