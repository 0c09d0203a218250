/**
 * Readable text and trimmed HTML from a page, for the worker's live-fetch tools and the
 * content refresh's crawl: Readability first, a plain block walk as the fallback.
 */
import { Readability } from "@mozilla/readability";
import { parseHTML } from "linkedom";

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
