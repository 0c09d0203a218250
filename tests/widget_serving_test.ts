/**
 * How the relay serves the embeddable widget: the loader revalidated, its chunk and
 * stylesheet immutable, all three loadable by pages on the origins in `ALLOWED_ORIGINS`
 * (`Cross-Origin-Resource-Policy: cross-origin`, CORS for the module chunk), while the
 * page and the API keep their strict `same-site` policy. The loader stays small.
 */
import { buildWeb, DEFAULT_WEB_OUT, gzipSize, shadowCss } from "../lib/tasks/web_build.ts";
import { assert, assertEquals } from "./_assert.ts";
import { ensurePageBuilt } from "./_browser.ts";
import { withRelay } from "./_relay_process.ts";

const SITE = "https://site.example";

/** The loader's text and the fingerprinted names it loads. */
async function loaderNames(url: string): Promise<{ chunk: string; css: string }> {
  const loader = await (await fetch(url)).text();
  const chunk = loader.match(/widget-chat\.[0-9a-f]{12}\.js/)?.[0];
  const css = loader.match(/widget\.[0-9a-f]{12}\.css/)?.[0];
  assert(chunk && css, `the loader names its chunk and stylesheet: ${loader.slice(0, 200)}`);
  return { chunk, css };
}

Deno.test("the widget's files load from other sites; the page and the API stay same-site", async () => {
  await ensurePageBuilt();
  await withRelay({ BASE_PATH: "/terrarium", ALLOWED_ORIGINS: SITE }, async (relay) => {
    const base = `${relay.url}/terrarium`;
    const loader = await fetch(`${base}/widget.js`, { headers: { origin: SITE } });
    await loader.body?.cancel();
    assertEquals(loader.status, 200);
    assertEquals(loader.headers.get("content-type"), "text/javascript; charset=utf-8");
    assertEquals(loader.headers.get("cache-control"), "no-cache", "a deploy shows at once");
    assertEquals(loader.headers.get("cross-origin-resource-policy"), "cross-origin");
    assertEquals(loader.headers.get("access-control-allow-origin"), SITE);
    assertEquals(loader.headers.get("x-content-type-options"), "nosniff");
    const etag = loader.headers.get("etag");
    assert(etag, "the loader carries a validator");

    const again = await fetch(`${base}/widget.js`, {
      headers: { origin: SITE, "if-none-match": etag },
    });
    await again.body?.cancel();
    assertEquals(again.status, 304);
    assertEquals(again.headers.get("cross-origin-resource-policy"), "cross-origin");
    assertEquals(again.headers.get("access-control-allow-origin"), SITE);

    const { chunk, css } = await loaderNames(`${base}/widget.js`);
    for (const [name, type] of [[chunk, "text/javascript"], [css, "text/css"]] as const) {
      const asset = await fetch(`${base}/${name}`, { headers: { origin: SITE } });
      await asset.body?.cancel();
      assertEquals(asset.status, 200, name);
      assert(asset.headers.get("content-type")!.startsWith(type), name);
      assertEquals(asset.headers.get("cache-control"), "public, max-age=31536000, immutable");
      assertEquals(asset.headers.get("cross-origin-resource-policy"), "cross-origin", name);
      assertEquals(asset.headers.get("access-control-allow-origin"), SITE, name);
      assertEquals(asset.headers.get("vary"), "Origin", "the grant depends on who asks");
    }

    // An origin the relay does not list gets no CORS grant for the module chunk.
    const stranger = await fetch(`${base}/${chunk}`, {
      headers: { origin: "https://evil.example" },
    });
    await stranger.body?.cancel();
    assertEquals(stranger.headers.get("access-control-allow-origin"), null);

    // The page, its script and the API keep the strict policy.
    const page = await fetch(`${base}/`, { headers: { origin: SITE } });
    const html = await page.text();
    assertEquals(page.headers.get("cross-origin-resource-policy"), "same-site");
    assertEquals(page.headers.get("access-control-allow-origin"), null);
    assert(page.headers.get("content-security-policy")!.includes("frame-ancestors 'none'"));
    const app = html.match(/app\.[0-9a-f]{12}\.js/)![0];
    const script = await fetch(`${base}/${app}`, { headers: { origin: SITE } });
    await script.body?.cancel();
    assertEquals(script.headers.get("cross-origin-resource-policy"), "same-site");
    assertEquals(script.headers.get("access-control-allow-origin"), null);
    const health = await fetch(`${base}/api/health`, { headers: { origin: SITE } });
    await health.body?.cancel();
    assertEquals(health.headers.get("cross-origin-resource-policy"), "same-site");
    assertEquals(health.headers.get("access-control-allow-origin"), SITE);
  });
});

Deno.test("without ALLOWED_ORIGINS the widget's files grant no other origin", async () => {
  await ensurePageBuilt();
  await withRelay({}, async (relay) => {
    const loader = await fetch(`${relay.url}/widget.js`, { headers: { origin: SITE } });
    await loader.body?.cancel();
    assertEquals(loader.status, 200);
    assertEquals(loader.headers.get("access-control-allow-origin"), null);
  });
});

Deno.test("the widget's loader is under 5 KB gzipped and defines nothing at the top level", async () => {
  await ensurePageBuilt();
  const loader = await Deno.readFile(`${DEFAULT_WEB_OUT}/widget.js`);
  const size = await gzipSize(loader);
  assert(size < 5 * 1024, `widget.js is ${size} bytes gzipped`);
  const text = new TextDecoder().decode(loader);
  // A classic script: a top-level `var`/`let`/`function` would be a global of the host page.
  assert(text.startsWith("(()=>{"), text.slice(0, 80));
  assert(!/__TERRARIUM_WIDGET_/.test(text), "the build named the chunk and stylesheet");
});

Deno.test("a widget built for another host defaults to that relay's API", async () => {
  const out = await Deno.makeTempDir({ prefix: "terrarium-widget-" });
  try {
    await buildWeb({ apiBase: "https://relay.example.com/terrarium/api", outDir: `${out}/site` });
    const loader = await Deno.readTextFile(`${out}/site/widget.js`);
    assert(loader.includes(`"https://relay.example.com/terrarium/api"`), loader.slice(0, 300));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("the page's stylesheet, rewritten for the shadow root: the wrapper for :root, px for rem", () => {
  assertEquals(
    shadowCss(`:root { --r: 12px; } :root[data-theme="dark"] { a: b; } p { margin: 0.5rem 1rem; }`),
    `.terrarium-widget { --r: 12px; } .terrarium-widget[data-theme="dark"] { a: b; } ` +
      `p { margin: 8px 16px; }`,
  );
  assertEquals(
    shadowCss("width: min(32rem, calc(100vw - 1.25rem))"),
    "width: min(512px, calc(100vw - 20px))",
  );
});
