/** `fetch_live_page`: the readable text of an allowed live page. */
import { parseHTML } from "linkedom";
import { z } from "zod";
import { defineTool } from "../tool_registry.ts";
import { fetchAllowed } from "./live_fetch.ts";

const MAX_TEXT_CHARS = 8_000;
const NOISE = "script,style,noscript,template,svg,nav,header,footer,aside,form,iframe";

// linkedom's types assume the DOM lib, which Deno does not load: the little we use.
interface HtmlNode {
  textContent: string | null;
  remove(): void;
}
interface HtmlDocument {
  title: string;
  body: HtmlNode | null;
  documentElement: HtmlNode;
  querySelector(selector: string): HtmlNode | null;
  querySelectorAll(selector: string): Iterable<HtmlNode>;
}

/** The visible text of an HTML document's main content, whitespace collapsed. */
export function readableText(html: string): { title: string; text: string } {
  const { document } = parseHTML(html) as unknown as { document: HtmlDocument };
  for (const node of document.querySelectorAll(NOISE)) node.remove();
  const main = document.querySelector("main, article") ?? document.body ?? document.documentElement;
  const text = (main?.textContent ?? "").replace(/\s+/g, " ").trim();
  return { title: (document.title ?? "").trim(), text };
}

export const fetchLivePage = defineTool({
  name: "fetch_live_page",
  description:
    "Fetch a page from an allowed live site and return its readable text. Use only when the cached site and GitHub data do not answer the question.",
  schema: z.object({
    url: z.string().min(1).max(2048).describe("An https URL on an allowed host"),
  }),
  timeoutMs: 15_000,
  activity: ({ url }) => `Fetching ${url}…`,
  async run({ url }, { config, signal }) {
    const page = await fetchAllowed(url, config, signal);
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
});
