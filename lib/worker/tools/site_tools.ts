/** `list_site_pages`, `fetch_site_page` and `search_site`: the cached copy of the website. */
import { join } from "node:path";
import { z } from "zod";
import { SiteIndex } from "../site_index.ts";
import { defineTool, type Tool, ToolError } from "../tool_registry.ts";

const MAX_PAGE_CHARS = 8_000;
/** Distinct pages of a search that count as its sources: the ones an answer draws on. */
export const TOP_SEARCH_SOURCES = 3;

/** The first `TOP_SEARCH_SOURCES` distinct pages of ranked hits. */
export function topHits<T extends { url: string }>(hits: T[]): T[] {
  const seen = new Set<string>();
  return hits.filter((hit) => !seen.has(hit.url) && seen.add(hit.url)).slice(0, TOP_SEARCH_SOURCES);
}

/** The site index of `contentDir` (`content/site`). */
export function siteIndexOf(contentDir: string): SiteIndex {
  return new SiteIndex(join(contentDir, "site"));
}

/** The three site tools over `index`. */
export function siteTools(index: SiteIndex): Tool[] {
  return [
    defineTool({
      name: "list_site_pages",
      description: "List the pages of the cached website: URL, title and when each was fetched.",
      schema: z.object({}),
      activity: () => "Looking at the site map…",
      run: async () => ({ pages: await index.list() }),
    }),
    defineTool({
      name: "fetch_site_page",
      description: "Read one page of the cached website by its URL or path (e.g. /about).",
      schema: z.object({ url: z.string().min(1).max(500).describe("The page URL or path") }),
      activity: ({ url }) => `Reading ${url}…`,
      async run({ url }) {
        const page = await index.page(url);
        if (!page) {
          throw new ToolError(
            "not_found",
            `No cached page "${url}"; list_site_pages shows them all`,
          );
        }
        return {
          url: page.url,
          title: page.title,
          fetchedAt: page.fetchedAt,
          text: page.text.slice(0, MAX_PAGE_CHARS),
          truncated: page.text.length > MAX_PAGE_CHARS,
        };
      },
      sources: (page) => [{ url: page.url, title: page.title, kind: "page" }],
    }),
    defineTool({
      name: "search_site",
      description: "Search the cached website; returns the best matching passages with snippets.",
      schema: z.object({
        query: z.string().min(1).max(300),
        limit: z.number().int().min(1).max(10).default(5),
      }),
      activity: ({ query }) => `Searching the site for “${query.slice(0, 60)}”…`,
      run: async ({ query, limit }) => ({ results: await index.search(query, limit) }),
      sources: ({ results }) =>
        topHits(results).map((hit) => ({ url: hit.url, title: hit.title, kind: "page" })),
    }),
  ];
}
