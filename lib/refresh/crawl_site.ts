/**
 * Collects the site's pages for the cache: a breadth-first crawl over HTTP from the start
 * URL (same origin, allowed path prefixes, a depth and page limit, HTML only, size-capped
 * bodies), or a walk of a local web root. Each page keeps its readable text and title.
 */
import { parseHTML } from "linkedom";
import { join, relative } from "node:path";
import { readCapped } from "../worker/read_capped.ts";
import { readableText } from "../worker/tools/fetch_live_page.ts";

/** A page ready for the cache. */
export interface CrawledPage {
  url: string;
  title: string;
  text: string;
}

export interface CrawlOptions {
  startUrl: string;
  paths: string[];
  maxDepth: number;
  maxPages: number;
  progress: (line: string) => void;
  fetch?: typeof fetch;
}

const MAX_PAGE_BYTES = 1024 * 1024;
const PAGE_TIMEOUT_MS = 15_000;

function links(html: string, base: URL): URL[] {
  const { document } = parseHTML(html) as unknown as {
    document: { querySelectorAll(s: string): Iterable<{ getAttribute(n: string): string | null }> };
  };
  const out: URL[] = [];
  for (const a of document.querySelectorAll("a[href]")) {
    try {
      const url = new URL(a.getAttribute("href")!, base);
      url.hash = "";
      out.push(url);
    } catch { /* not a URL */ }
  }
  return out;
}

/** Crawls the site over HTTP. */
export async function crawlSite(options: CrawlOptions): Promise<CrawledPage[]> {
  const doFetch = options.fetch ?? fetch;
  const start = new URL(options.startUrl);
  const allowed = (url: URL) =>
    url.origin === start.origin && options.paths.some((p) => url.pathname.startsWith(p));
  const seen = new Set<string>([start.href]);
  const queue: { url: URL; depth: number }[] = [{ url: start, depth: 0 }];
  const pages: CrawledPage[] = [];
  while (queue.length && pages.length < options.maxPages) {
    const { url, depth } = queue.shift()!;
    let response: Response;
    try {
      response = await doFetch(url, {
        signal: AbortSignal.timeout(PAGE_TIMEOUT_MS),
        redirect: "follow",
      });
    } catch (error) {
      options.progress(`skip ${url.href}: ${(error as Error).message}`);
      continue;
    }
    if (!response.ok || !/text\/html/i.test(response.headers.get("content-type") ?? "")) {
      await response.body?.cancel();
      options.progress(
        `skip ${url.href}: ${response.status} ${response.headers.get("content-type") ?? ""}`,
      );
      continue;
    }
    const { text: html } = await readCapped(response.body, MAX_PAGE_BYTES);
    const { title, text } = readableText(html);
    if (text) pages.push({ url: url.href, title: title || url.pathname, text });
    options.progress(`page ${pages.length}/${options.maxPages}: ${url.href}`);
    if (depth >= options.maxDepth) continue;
    for (const link of links(html, url)) {
      if (!allowed(link) || seen.has(link.href)) continue;
      seen.add(link.href);
      queue.push({ url: link, depth: depth + 1 });
    }
  }
  return pages;
}

/** Reads the `.html` files of a local web root as the pages of `siteUrl`. */
export async function readWebRoot(
  root: string,
  siteUrl: string,
  options: Pick<CrawlOptions, "maxPages" | "progress" | "paths"> & {
    /** "/about" for about.html (for hosts that serve clean URLs); else "/about.html". */
    cleanUrls?: boolean;
  },
): Promise<CrawledPage[]> {
  const pages: CrawledPage[] = [];
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      if (pages.length >= options.maxPages) return;
      const path = join(dir, entry.name);
      if (entry.isDirectory && !entry.name.startsWith(".")) await walk(path);
      if (!entry.isFile || !entry.name.endsWith(".html")) continue;
      // A plain static host serves about.html at /about.html only (/about is a 404), so the
      // URL keeps its .html unless the operator says the host serves clean URLs.
      const file = relative(root, path).replace(/(^|\/)index\.html$/, "$1");
      const rel = "/" + (options.cleanUrls ? file.replace(/\.html$/, "") : file);
      if (!options.paths.some((p) => rel.startsWith(p))) continue;
      const { title, text } = readableText(await Deno.readTextFile(path));
      if (text) pages.push({ url: siteUrl + rel, title: title || rel, text });
      options.progress(`page ${pages.length}: ${rel}`);
    }
  };
  await walk(root);
  return pages;
}
