/**
 * `fetch_live_page` (readable text) and `fetch_live_page_html` (trimmed HTML) of an allowed
 * live page. When the live fetch fails and the page is in the site cache, the cached copy
 * is returned instead, marked as such.
 */
import { Readability } from "@mozilla/readability";
import { parseHTML } from "linkedom";
import { z } from "zod";
import type { SiteIndex } from "../site_index.ts";
import { defineTool, type Tool, ToolError } from "../tool_registry.ts";
import { fetchAllowed, type FetchedPage } from "./live_fetch.ts";

const MAX_TEXT_CHARS = 8_000;
const MAX_HTML_CHARS = 12_000;
const NOISE = "script,style,noscript,template,svg,nav,header,footer,aside,form,iframe,object,embed";
const BLOCKS = "h1,h2,h3,h4,h5,h6,p,li,pre,blockquote";
const KEPT_ATTRIBUTES = new Set(["href", "src", "alt", "title"]);

// linkedom's types assume the DOM lib, which Deno does not load: the little we use.
interface HtmlNode {
  textContent: string | null;
  tagName: string;
  attributes: Iterable<{ name: string }>;
  remove(): void;
  removeAttribute(name: string): void;
  closest(selector: string): HtmlNode | null;
  parentElement: HtmlNode | null;
  innerHTML: string;
}
interface HtmlDocument {
  title: string;
  body: HtmlNode | null;
  documentElement: HtmlNode;
  querySelector(selector: string): HtmlNode | null;
  querySelectorAll(selector: string): Iterable<HtmlNode>;
}

function parse(html: string): HtmlDocument {
  // linkedom builds no body for a bare fragment; wrap it so there is one.
  const full = /<body[\s>]/i.test(html) ? html : `<html><body>${html}</body></html>`;
  return (parseHTML(full) as unknown as { document: HtmlDocument }).document;
}

function blockText(root: HtmlDocument): string {
  const parts: string[] = [];
  for (const node of root.querySelectorAll(BLOCKS)) {
    // A block inside another block is part of the outer one's text.
    if (node.parentElement?.closest(BLOCKS)) continue;
    const text = (node.textContent ?? "").replace(/\s+/g, " ").trim();
    if (text) parts.push(text);
  }
  return parts.join("\n\n");
}

/** The readable main text of an HTML page (Readability, then a plain fallback). */
export function readableText(html: string): { title: string; text: string } {
  const document = parse(html);
  const title = (document.title ?? "").trim();
  const article = new Readability(document as never).parse();
  if (article?.content) {
    const text = blockText(parse(article.content));
    if (text) return { title: article.title?.trim() || title, text };
  }
  const fallback = parse(html);
  for (const node of fallback.querySelectorAll(NOISE)) node.remove();
  const main = fallback.querySelector("main, article") ?? fallback.body ?? fallback.documentElement;
  return { title, text: (main?.textContent ?? "").replace(/\s+/g, " ").trim() };
}

/** The page's body without scripts, styles, forms, comments or attributes beyond links. */
export function trimmedHtml(html: string): string {
  const document = parse(html);
  for (const node of document.querySelectorAll(NOISE)) node.remove();
  for (const node of document.querySelectorAll("*")) {
    for (const { name } of [...node.attributes]) {
      if (!KEPT_ATTRIBUTES.has(name.toLowerCase())) node.removeAttribute(name);
    }
  }
  const body = document.body?.innerHTML ?? "";
  return body.replace(/<!--[\s\S]*?-->/g, "").replace(/\s+/g, " ").trim();
}

const Args = z.object({
  url: z.string().min(1).max(2048).describe("An https URL on an allowed host"),
});

/** One live-fetch tool: `render` shapes the fetched page; a failure returns the cached copy. */
function liveFetchTool(
  site: SiteIndex,
  spec: {
    name: string;
    description: string;
    render: (page: FetchedPage) => { url: string; title?: string } & Record<string, unknown>;
  },
): Tool {
  return defineTool({
    name: spec.name,
    description: spec.description,
    schema: Args,
    timeoutMs: 15_000,
    activity: ({ url }) => `Fetching ${url}…`,
    async run({ url }, { config, signal }) {
      try {
        return spec.render(await fetchAllowed(url, config, signal));
      } catch (error) {
        // A refusal is final; anything else falls back to the cache when the page is there.
        const refused = error instanceof ToolError && error.code === "not_allowed";
        const cached = refused ? null : await site.page(url);
        if (!cached) throw error;
        return {
          url: cached.url,
          title: cached.title,
          text: cached.text.slice(0, MAX_TEXT_CHARS),
          fromCache: true,
          cachedAt: cached.fetchedAt,
          liveError: error instanceof Error ? error.message : String(error),
        };
      }
    },
    sources: (page: { url: string; title?: string; fromCache?: boolean }) => [{
      url: page.url,
      title: page.title ?? "",
      kind: page.fromCache ? "page" : "live",
    }],
  });
}

/** The two live-fetch tools; failures fall back to `site`'s cached copy when it has one. */
export function liveFetchTools(site: SiteIndex): Tool[] {
  return [
    liveFetchTool(site, {
      name: "fetch_live_page",
      description:
        "Fetch a page from an allowed live site and return its readable text. Use only when the cached site and GitHub data do not answer.",
      render(page) {
        const { title, text } = /html/i.test(page.contentType)
          ? readableText(page.body)
          : { title: "", text: page.body.replace(/\s+/g, " ").trim() };
        return {
          url: page.url,
          title,
          text: text.slice(0, MAX_TEXT_CHARS),
          truncated: page.truncated || text.length > MAX_TEXT_CHARS,
        };
      },
    }),
    liveFetchTool(site, {
      name: "fetch_live_page_html",
      description:
        "Fetch an allowed live page as trimmed HTML (links and structure kept). Prefer fetch_live_page unless the markup matters.",
      render(page) {
        const html = /html/i.test(page.contentType) ? trimmedHtml(page.body) : page.body;
        return {
          url: page.url,
          html: html.slice(0, MAX_HTML_CHARS),
          truncated: page.truncated || html.length > MAX_HTML_CHARS,
        };
      },
    }),
  ];
}
