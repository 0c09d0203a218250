/**
 * `search_web`: SearxNG's JSON API (`SEARCH_API_URL`, e.g. http://127.0.0.1:8888/search),
 * the last resort after the cache, GitHub and live fetches. The result count, the response
 * size and the time are capped; without a configured URL the tool says so plainly.
 */
import { z } from "zod";
import { readCapped } from "../../read_capped.ts";
import { defineTool, ToolError } from "../tool_registry.ts";
import { topHits } from "./site_tools.ts";

const MAX_RESPONSE_BYTES = 256 * 1024;
const SearxResponse = z.object({
  results: z.array(
    z.object({
      title: z.string().default(""),
      url: z.string(),
      content: z.string().default(""),
    }).loose(),
  ).default([]),
}).loose();

export const searchWeb = defineTool({
  name: "search_web",
  description:
    "Search the web (SearxNG). Use only when the cached site, GitHub data and live pages cannot answer.",
  schema: z.object({
    query: z.string().min(1).max(300),
    limit: z.number().int().min(1).max(8).default(5),
  }),
  timeoutMs: 10_000,
  activity: ({ query }) => `Searching the web for “${query.slice(0, 60)}”…`,
  async run({ query, limit }, { config, signal }) {
    if (!config.searchApiUrl) {
      throw new ToolError("not_configured", "Web search is not configured on this worker");
    }
    const url = new URL(config.searchApiUrl);
    url.searchParams.set("q", query);
    url.searchParams.set("format", "json");
    const headers: Record<string, string> = { accept: "application/json" };
    if (config.searchApiKey) headers.authorization = `Bearer ${config.searchApiKey}`;
    const response = await fetch(url, { signal, headers });
    if (!response.ok) {
      await response.body?.cancel();
      throw new ToolError("search_failed", `The search service answered ${response.status}`);
    }
    const { text, truncated } = await readCapped(response.body, MAX_RESPONSE_BYTES);
    if (truncated) throw new ToolError("search_failed", "The search service answered too much");
    let parsed;
    try {
      parsed = SearxResponse.parse(JSON.parse(text));
    } catch {
      throw new ToolError("search_failed", "The search service's answer could not be read");
    }
    return {
      query,
      results: parsed.results.slice(0, limit).map((r) => ({
        title: r.title,
        url: r.url,
        snippet: r.content.slice(0, 400),
      })),
    };
  },
  sources: ({ results }) =>
    topHits(results).map((r) => ({ url: r.url, title: r.title, kind: "web" })),
});
