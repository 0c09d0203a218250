/**
 * The demo model's final answer after tools (issue 16): a few sentences of prose drawn
 * from the top results, as a model that read them would write, with Markdown links to the
 * pages used, and a plain sentence for a tool that failed. Never raw JSON: text taken from
 * results is cut to whole sentences and stripped of Markdown and braces, and links are
 * built here from http(s) URLs only. Deterministic: the same results give the same words.
 */

/** One tool result as the model received it. */
export interface ToolResultText {
  name: string;
  /** The `tool` message's content: the worker's JSON text. */
  content: string;
  /** The call's arguments (JSON text), when known. */
  arguments?: string;
}

/** Sentences kept from one result passage. */
const SENTENCES_PER_PASSAGE = 2;
/** Characters kept from one passage at most. */
const PASSAGE_CHARS = 320;
/** Distinct pages (or repositories) quoted from one search or listing. */
const TOP_RESULTS = 3;

/** What a tool did, in words that fit "I could not …". */
const DOING: Record<string, string> = {
  search_site: "search the site",
  list_site_pages: "list the site's pages",
  fetch_site_page: "read that page of the site",
  get_profile: "read Morgan's profile",
  list_github_repos: "list the GitHub repositories",
  get_github_repo: "read that repository",
  fetch_live_page: "fetch that page",
  fetch_live_page_html: "fetch that page",
  search_web: "search the web",
  write_enhancement_request: "write down the request",
};

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** A URL fit for a Markdown link, or "" when it is not http(s). */
function linkUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "";
  // Parentheses and spaces would end the Markdown link early.
  return url.href.replace(/[()\s<>]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `[title](url)`, or the bare title when the URL is unusable. */
function link(title: string, rawUrl: string): string {
  const text = plain(title).replace(/[[\]]/g, "") || rawUrl;
  const url = linkUrl(rawUrl);
  return url ? `[${text}](${url})` : text;
}

/** Text without Markdown markup, braces, tags or runs of whitespace. */
function plain(text: string): string {
  return text
    // Code and headings are not prose: a heading would run into its first sentence.
    .replace(/^\s*(```|~~~)[\s\S]*?(^\s*\1|$(?![\s\S]))/gm, " ")
    .replace(/^( {4,}|\t).*$/gm, " ")
    .replace(/^\s{0,3}#{1,6}\s.*$/gm, " ")
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/^\s{0,3}(#{1,6}|[-*+]|\d+\.)\s+/gm, "")
    .replace(/[{}[\]`*_#|<>\\]/g, " ")
    .replace(/\s+/g, " ")
    .replace(/ ([.,;:!?])/g, "$1")
    .trim();
}

/** Lowercases a leading capital that starts a plain word ("The host" → "the host"). */
function lowerFirst(text: string): string {
  return /^(?!I\b)[A-Z](?=[a-z]|\s)/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}

/** The first whole sentences of `text` (at most `count`, ~320 characters), ending in a stop. */
export function sentences(text: string, count = SENTENCES_PER_PASSAGE): string {
  const clean = plain(text).replace(/^…\s*/, "");
  if (!clean) return "";
  // A stop ends a sentence only before a space or the end ("example.com" goes on).
  const parts = clean.match(/.+?(?:[.!?]+(?=\s|$)|…|$)/g) ?? [clean];
  let out = "";
  for (const part of parts.slice(0, count)) {
    const piece = part.trim();
    // A snippet cut mid-sentence ends in "…": keep it only when nothing else is there.
    if (piece.endsWith("…") && out) break;
    if (out && out.length + piece.length > PASSAGE_CHARS) break;
    out = out ? `${out} ${piece}` : piece;
  }
  if (out.length > PASSAGE_CHARS) out = `${out.slice(0, PASSAGE_CHARS).replace(/\s+\S*$/, "")}…`;
  return /[.!?…]$/.test(out) ? out : `${out}.`;
}

/** "A sentence. Another one." + link → "A sentence. Another one ([T](u))." */
function cited(passage: string, title: string, url: string): string {
  // Without a usable URL there is nothing to cite: a bare title would read as noise.
  if (!linkUrl(url)) return passage;
  const source = link(title, url);
  const match = /^(.*?)([.!?…])$/.exec(passage);
  return match ? `${match[1]} (${source})${match[2]}` : `${passage} (${source}).`;
}

/** The tool result as an object; a result over the worker's cap is read field by field. */
function parse(content: string): Obj {
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch {
    return { text: content };
  }
  if (isObj(value) && value.truncated === true && typeof value.excerpt === "string") {
    return fieldsOf(value.excerpt);
  }
  return isObj(value) ? value : { value };
}

/** url, title and text of a JSON prefix (the worker cut a long result). */
function fieldsOf(excerpt: string): Obj {
  const first = (name: string) => {
    const match = new RegExp(`"${name}":"((?:[^"\\\\]|\\\\.)*)`).exec(excerpt);
    if (!match) return "";
    try {
      return JSON.parse(`"${match[1]!.replace(/\\$/, "")}"`) as string;
    } catch {
      return match[1]!;
    }
  };
  return { url: first("url"), title: first("title"), text: first("text") || first("snippet") };
}

/** Hits of a search or listing, one per page, best first. */
function topPerPage(items: unknown[]): Obj[] {
  const seen = new Set<string>();
  const out: Obj[] = [];
  for (const item of items) {
    if (!isObj(item)) continue;
    const key = str(item.url) || str(item.name) || str(item.title);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(item);
    if (out.length >= TOP_RESULTS) break;
  }
  return out;
}

/** A search's hits as sentences, each citing its page. */
function fromHits(hits: Obj[], where: string, query: string): string {
  if (hits.length === 0) {
    return query
      ? `I looked ${where} for “${plain(query)}” but found nothing about it.`
      : `I looked ${where} but found nothing about it.`;
  }
  // The best hit says most; the others add a sentence each.
  const lines = hits.map((hit, i) =>
    cited(
      sentences(str(hit.snippet) || str(hit.text) || str(hit.title), i === 0 ? 2 : 1),
      str(hit.title),
      str(hit.url),
    )
  );
  return [`Here is what I found ${where}.`, ...lines].join(" ");
}

/** The `query` argument of a call, or "". */
function queryOf(args: string | undefined): string {
  try {
    const parsed = JSON.parse(args ?? "");
    return isObj(parsed) ? str(parsed.query) : "";
  } catch {
    return "";
  }
}

/** The words for one tool's result. */
function paragraph(result: ToolResultText, question: string): string {
  const data = parse(result.content);
  const query = queryOf(result.arguments) || question;
  if (typeof data.error === "string") {
    const doing = DOING[result.name] ?? `use ${result.name}`;
    const why = plain(data.error).replace(/[.!?]*$/, "");
    return `I could not ${doing}: ${lowerFirst(why) || "it failed"}.`;
  }
  switch (result.name) {
    case "search_site":
      return fromHits(
        topPerPage(Array.isArray(data.results) ? data.results : []),
        "on the site",
        query,
      );
    case "search_web":
      return fromHits(
        topPerPage(Array.isArray(data.results) ? data.results : []),
        "on the web",
        query,
      );
    case "list_site_pages": {
      const pages = Array.isArray(data.pages) ? data.pages.filter(isObj) : [];
      if (!pages.length) return "The site has no cached pages yet.";
      const names = pages.slice(0, 6).map((p) => link(str(p.title), str(p.url)));
      return `The site has ${pages.length} page${pages.length === 1 ? "" : "s"}, among them ${
        names.join(", ")
      }.`;
    }
    case "list_github_repos": {
      const repos = topPerPage(Array.isArray(data.repos) ? data.repos : []);
      if (!repos.length) return "Morgan has no public repositories cached yet.";
      const parts = repos.map((r) => {
        const about = plain(str(r.description)).replace(/[.!?]+$/, "");
        return `${link(str(r.name), str(r.url))}${about ? ` (${lowerFirst(about)})` : ""}`;
      });
      return `Morgan's repositories on GitHub include ${parts.join(", ")}.`;
    }
    case "get_github_repo": {
      const path = str(data.path) || "README.md";
      const title = `${str(data.repo)} ${path === "README.md" ? "README" : path}`.trim();
      return cited(sentences(str(data.text)), title, str(data.url));
    }
    case "get_profile":
      return `From Morgan's profile: ${sentences(str(data.profile))}`;
    case "write_enhancement_request":
      return "I wrote the request down for Morgan to read.";
    default: {
      // fetch_site_page, fetch_live_page(_html) and anything page-shaped.
      const text = str(data.text) || plain(str(data.html));
      if (text) return cited(sentences(text), str(data.title) || str(data.url), str(data.url));
      const words = Object.values(data).filter((v) => typeof v === "string").join(". ");
      return words ? sentences(words) : `I used ${result.name}, but it returned nothing to quote.`;
    }
  }
}

/** The answer for the tool results of one question: a paragraph per result, each said once. */
export function proseFromToolResults(results: ToolResultText[], question: string): string {
  if (results.length === 0) return "I could not find anything to answer that with.";
  // Eight refused fetches are one sentence, not eight.
  return [...new Set(results.map((r) => paragraph(r, question)))].join("\n\n");
}
