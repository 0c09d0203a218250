/**
 * How the relay serves the built page: a strict CSP on the HTML, assets cached for a year
 * under names that change with their content, validators for the rest, and CORS for a
 * page deployed on another host.
 */
import { pageCsp } from "../lib/page_csp.ts";
import { buildWeb } from "../lib/tasks/web_build.ts";
import { assert, assertEquals } from "./_assert.ts";
import { ensurePageBuilt } from "./_browser.ts";
import { withAppRelay } from "./_relay_in_process.ts";

Deno.test("the page is served with a strict CSP, fingerprinted assets and validators", async () => {
  await ensurePageBuilt();
  await withAppRelay({ BASE_PATH: "/terrarium" }, async (relay) => {
    const page = await fetch(`${relay.url}/terrarium/`);
    const html = await page.text();
    assertEquals(page.status, 200);
    assertEquals(page.headers.get("cache-control"), "no-cache");
    assertEquals(
      page.headers.get("content-security-policy"),
      `${pageCsp()}; frame-ancestors 'none'`,
    );
    assert(!/<script(?![^>]*\bsrc=)/.test(html), "no inline script");
    const script = html.match(/src="(app\.[0-9a-f]{12}\.js)"/)?.[1];
    assert(script, html);

    const asset = await fetch(`${relay.url}/terrarium/${script}`);
    await asset.body?.cancel();
    assertEquals(asset.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assertEquals(asset.headers.get("content-type"), "text/javascript; charset=utf-8");

    const again = await fetch(`${relay.url}/terrarium/`, {
      headers: { "if-none-match": page.headers.get("etag")! },
    });
    await again.body?.cancel();
    assertEquals(again.status, 304);
  });
});

Deno.test("the web build writes a page for another host: its API base and CSP name the relay", async () => {
  const out = await Deno.makeTempDir({ prefix: "terrarium-web-" });
  try {
    await buildWeb({ apiBase: "https://relay.example.com/terrarium/api", outDir: `${out}/site` });
    const html = await Deno.readTextFile(`${out}/site/index.html`);
    assert(html.includes('content="https://relay.example.com/terrarium/api"'), html);
    assert(html.includes("connect-src 'self' https://relay.example.com wss://relay.example.com"));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a page on an allowed other origin may call the API; other origins get no CORS grant", async () => {
  await withAppRelay({ ALLOWED_ORIGINS: "https://site.example" }, async (relay) => {
    const preflight = await fetch(`${relay.url}/api/session`, {
      method: "OPTIONS",
      headers: {
        origin: "https://site.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      },
    });
    await preflight.body?.cancel();
    assertEquals(preflight.headers.get("access-control-allow-origin"), "https://site.example");
    const other = await fetch(`${relay.url}/api/health`, {
      headers: { origin: "https://evil.example" },
    });
    await other.body?.cancel();
    assertEquals(other.headers.get("access-control-allow-origin"), null);
  });
});
