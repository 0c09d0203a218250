import { join } from "node:path";
import { assert, assertEquals } from "../../../tests/_assert.ts";
import { Logger } from "../../log.ts";
import { parseWorkerConfig } from "../config.ts";
import { deniedAddress, PRIVATE_RANGES } from "../permissions.ts";
import { SiteIndex } from "../site_index.ts";
import { ToolRegistry } from "../tool_registry.ts";
import { liveFetchTools, readableText, trimmedHtml } from "./fetch_live_page.ts";
import { liveFetchRefusal, urlUnder } from "./live_fetch.ts";

const ARTICLE = `<html><head><title>A post</title><script>alert(1)</script></head><body>
<nav>Home | About</nav><article><h1>GPUs at home</h1>
<p>${"Running a model at home needs a card with enough memory. ".repeat(12)}</p>
<p onclick="steal()">The second paragraph explains <a href="/power" class="x">power use</a>.</p>
</article><footer>© Morgan</footer></body></html>`;

/** A local site: articles, redirects (inside and off the allowlist), huge, slow and binary pages. */
function startSite() {
  const ac = new AbortController();
  let offsiteHits = 0;
  const offsite = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    () => {
      offsiteHits++;
      return new Response("secret", { headers: { "content-type": "text/plain" } });
    },
  );
  const site = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      const html = (body: string) =>
        new Response(body, { headers: { "content-type": "text/html; charset=utf-8" } });
      switch (path) {
        case "/post":
          return html(ARTICLE);
        case "/moved":
          return new Response(null, { status: 301, headers: { location: "/post" } });
        case "/away":
          return new Response(null, {
            status: 302,
            headers: { location: `http://127.0.0.1:${offsite.addr.port}/x` },
          });
        case "/huge":
          return html(`<p>${"x".repeat(2_000_000)}</p>`);
        case "/slow":
          return new Response(new ReadableStream({ start() {} }), {
            headers: { "content-type": "text/html" },
          });
        case "/image":
          return new Response(new Uint8Array(10), { headers: { "content-type": "image/png" } });
        default:
          return new Response("down", { status: 503, headers: { "content-type": "text/plain" } });
      }
    },
  );
  return {
    base: `http://127.0.0.1:${site.addr.port}`,
    offsiteHits: () => offsiteHits,
    async close() {
      ac.abort();
      await Promise.all([site.finished, offsite.finished]);
    },
  };
}

async function withTools(
  fn: (
    call: (name: string, url: string) => Promise<Record<string, unknown>>,
    base: string,
    site: ReturnType<typeof startSite>,
  ) => Promise<void>,
) {
  const site = startSite();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "cached.md"), "# Cached\n\nThe cached copy of the page.");
    await Deno.writeTextFile(
      join(dir, "pages.json"),
      JSON.stringify([{
        file: "cached.md",
        url: `${site.base}/gone`,
        title: "Cached",
        fetchedAt: "2026-11-01",
      }]),
    );
    const config = parseWorkerConfig({
      API_BASE_URL: "http://127.0.0.1:9",
      SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
      AGENT_API_URL: "http://127.0.0.1:9/v1",
      LIVE_ALLOWED_HOSTS: new URL(site.base).host,
    });
    const tools = new ToolRegistry(
      liveFetchTools(new SiteIndex(dir)).map((t) => ({ ...t, timeoutMs: 500 })),
    );
    const call = async (name: string, url: string) =>
      JSON.parse(
        (await tools.execute({ name, arguments: JSON.stringify({ url }) }, {
          config,
          chatId: "c",
          log: new Logger("t", "error", () => {}),
          signal: new AbortController().signal,
        })).content,
      );
    await fn(call, site.base, site);
  } finally {
    await site.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fetch_live_page returns the readable text of an allowed page, following allowed redirects", async () => {
  await withTools(async (call, base) => {
    const page = await call("fetch_live_page", `${base}/moved`);
    assertEquals([page.url, page.title], [`${base}/post`, "A post"]);
    const text = page.text as string;
    assert(text.startsWith("GPUs at home") && text.includes("power use"), text);
    assert(!text.includes("Home | About") && !text.includes("alert") && !text.includes("©"));
  });
});

Deno.test("live fetches refuse other hosts, off-list redirects, plain http and wrong types", async () => {
  await withTools(async (call, base, site) => {
    assertEquals((await call("fetch_live_page", `${base}/away`)).code, "not_allowed");
    assertEquals(site.offsiteHits(), 0, "the off-list host received nothing");
    assertEquals((await call("fetch_live_page", "https://elsewhere.example/")).code, "not_allowed");
    assertEquals((await call("fetch_live_page", "http://example.com/")).code, "not_allowed");
    assertEquals((await call("fetch_live_page", `${base}/image`)).code, "unsupported_type");
    assertEquals((await call("fetch_live_page", "not a url")).code, "bad_url");
  });
});

Deno.test("live fetches cap huge pages, time out on slow ones and fall back to the cache", async () => {
  await withTools(async (call, base) => {
    const huge = await call("fetch_live_page", `${base}/huge`);
    assertEquals(huge.truncated, true);
    assert((huge.text as string).length <= 8_000);
    assertEquals((await call("fetch_live_page", `${base}/slow`)).code, "timeout");
    const cached = await call("fetch_live_page", `${base}/gone`);
    assertEquals([cached.fromCache, cached.text], [
      true,
      "# Cached\n\nThe cached copy of the page.",
    ]);
  });
});

Deno.test("fetch_live_page_html keeps structure and links, drops scripts and handlers", async () => {
  await withTools(async (call, base) => {
    const { html } = await call("fetch_live_page_html", `${base}/post`) as { html: string };
    assert(html.includes('<a href="/power">power use</a>'), html);
    assert(!/script|onclick|class=|<nav|<footer/.test(html), html);
  });
  assertEquals(trimmedHtml("<p style='x'>a<!-- c --></p>"), "<p>a</p>");
  assertEquals(readableText("<p>Only</p>").text, "Only");
});

Deno.test("LIVE_ALLOWED_URLS entries match by origin and whole path segments, not string prefix", () => {
  const config = parseWorkerConfig({
    API_BASE_URL: "http://127.0.0.1:9",
    SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
    AGENT_API_URL: "http://127.0.0.1:9/v1",
    LIVE_ALLOWED_URLS: "https://github.com,https://x.dev/docs,https://social.example/@terra/",
  });
  const allowed = (url: string) => liveFetchRefusal(new URL(url), config) === null;
  for (
    const url of [
      "https://github.com/",
      "https://github.com/morgan/repo",
      "https://GitHub.com:443/x",
      "https://x.dev/docs",
      "https://x.dev/docs/",
      "https://x.dev/docs/a/b?q=1",
      "https://social.example/@terra",
      "https://social.example/@terra/post/1",
    ]
  ) assert(allowed(url), `${url} is allowed`);
  for (
    const url of [
      "https://github.com.evil.example/",
      "https://github.com@evil.example/",
      "https://user:pw@github.com/",
      "https://github.com:8443/",
      "https://x.dev/docsevil",
      "https://x.dev/doc",
      "https://x.dev/docs/../admin",
      "https://x.dev/",
      "https://social.example/@terrance",
      "https://evil.x.dev/docs",
    ]
  ) assert(!allowed(url), `${url} is refused`);
});

Deno.test("urlUnder() ignores an entry that is not a URL", () => {
  assertEquals(urlUnder(new URL("https://a.example/"), "a.example"), false);
});

Deno.test("deniedAddress() covers IPv4-mapped IPv6 forms of every denied range", () => {
  const deny = [...PRIVATE_RANGES];
  for (
    const address of [
      "127.0.0.1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "[::FFFF:127.0.0.1]",
      "0:0:0:0:0:ffff:7f00:0001",
      "::ffff:10.1.2.3",
      "::ffff:172.16.0.9",
      "::ffff:192.168.1.20",
      "::ffff:169.254.169.254",
      "::ffff:100.64.0.1",
      "::1",
      "fd00::1",
      "fe80::1%eth0",
      "::",
    ]
  ) assert(deniedAddress(address, deny), `${address} is denied`);
  for (
    const address of ["93.184.216.34", "::ffff:93.184.216.34", "2606:4700::1111", "::ffff:1.1.1.1"]
  ) {
    assert(!deniedAddress(address, deny), `${address} is public`);
  }
  // A range the worker keeps open (its agent lives there) stays open in the mapped form too.
  const open = deny.filter((r) => r !== "192.168.0.0/16");
  assert(!deniedAddress("::ffff:192.168.1.20", open));
  // A LAN name denies nothing, so nothing is refused here either.
  assert(!deniedAddress("::ffff:127.0.0.1", []));
});
