/**
 * Markdown to safe HTML. marked renders (GitHub-flavoured, with line breaks as written,
 * raw HTML shown as text), DOMPurify removes anything that could run: scripts, event handlers, `javascript:` and
 * other non-web URLs, forms, frames and styles. Images are not loaded at all (a model could
 * otherwise make every visitor's browser fetch an address of its choosing); they become
 * links. Links open in a new tab without a referrer or a handle on this page.
 */
import DOMPurify from "dompurify";
import { Marked } from "marked";

const escapes: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (c) => escapes[c]!);

// Raw HTML in the markdown is shown as the text it is: answers are markdown, and an
// answer that carries HTML is quoting it (or was made to). DOMPurify then stands behind
// that for everything markdown itself can produce.
const marked = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: { html: ({ text }) => escapeHtml(text) },
});
// The operator's words (greeting, how to get a code) are wrapped like any Markdown file:
// a single line break there is a space, not a new line.
const wrapped = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  renderer: { html: ({ text }) => escapeHtml(text) },
});

// In a browser the default export is a ready purifier bound to this window.
const purifier = DOMPurify;
purifier.setConfig({
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "svg", "math"],
  FORBID_ATTR: ["style", "class", "id"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
});
purifier.addHook("uponSanitizeElement", (node, data) => {
  if (data.tagName !== "img" || !(node instanceof Element)) return;
  const src = node.getAttribute("src") ?? "";
  const link = node.ownerDocument.createElement("a");
  link.textContent = `[image: ${node.getAttribute("alt") || src || "no description"}]`;
  if (/^https?:/i.test(src)) link.setAttribute("href", src);
  node.replaceWith(link);
});
purifier.addHook("afterSanitizeAttributes", (node) => {
  if (node instanceof Element && node.tagName === "A") {
    if (node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  }
});

/**
 * Safe HTML for `markdown` (an answer, or a visitor's message). `breaks: false` for text
 * wrapped in a file (the operator's words).
 */
export function renderMarkdown(markdown: string, options: { breaks?: boolean } = {}): string {
  const parser = options.breaks === false ? wrapped : marked;
  return purifier.sanitize(parser.parse(markdown) as string);
}
