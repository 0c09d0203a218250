/**
 * `fetch_live_page` (readable text) and `fetch_live_page_html` (trimmed HTML) of an allowed
 * live page. When the live fetch fails and the page is in the site cache, the cached copy
 * is returned instead, marked as such.
 */
import { z } from "zod";
import { readableText, trimmedHtml } from "../../readable_html.ts";
import type { SiteIndex } from "../site_index.ts";
import { defineTool, type Tool, ToolError } from "../tool_registry.ts";
import { fetchAllowed, type FetchedPage } from "./live_fetch.ts";

const MAX_TEXT_CHARS = 8_000;
const MAX_HTML_CHARS = 12_000;
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
