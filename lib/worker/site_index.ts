/**
 * The cached site (`content/site/`): `pages.json` lists each page's file, URL, title and
 * fetch time; the files hold the page text as Markdown. Pages are cut into passages (a
 * heading and the paragraphs under it) and indexed with MiniSearch's BM25+ ranking, so a
 * search returns the passage that answers, with a snippet around the match, not every
 * file that merely contains a word. The index is rebuilt when `pages.json` changes.
 */
import MiniSearch from "minisearch";
import { join } from "node:path";
import { z } from "zod";

const PageEntry = z.object({
  file: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*\.md$/, "a plain .md file name"),
  url: z.string().url(),
  title: z.string(),
  fetchedAt: z.string(),
});
const PagesFile = z.array(PageEntry);

/** A cached page: its listing entry and Markdown text. */
export interface SitePage {
  url: string;
  title: string;
  fetchedAt: string;
  text: string;
}

/** One search hit. */
export interface SiteHit {
  url: string;
  title: string;
  heading: string;
  snippet: string;
  score: number;
}

interface Passage {
  id: number;
  url: string;
  title: string;
  heading: string;
  text: string;
}

const SNIPPET_CHARS = 240;

/** Cuts Markdown into passages: each `#`/`##` heading with the text under it. */
export function passages(markdown: string, pageTitle: string): { heading: string; text: string }[] {
  const out: { heading: string; text: string }[] = [];
  let heading = pageTitle;
  let lines: string[] = [];
  const flush = () => {
    const text = lines.join(" ").replace(/\s+/g, " ").trim();
    if (text) out.push({ heading, text });
    lines = [];
  };
  for (const line of markdown.split("\n")) {
    const match = /^#{1,3}\s+(.*)$/.exec(line);
    if (match) {
      flush();
      heading = match[1]!.trim();
    } else {
      lines.push(line);
    }
  }
  flush();
  return out;
}

/** A window of `text` around the first query term found, with ellipses where cut. */
export function snippet(text: string, terms: string[]): string {
  if (text.length <= SNIPPET_CHARS) return text;
  const lower = text.toLowerCase();
  const at =
    terms.map((t) => lower.indexOf(t.toLowerCase())).filter((i) => i >= 0).sort((a, b) =>
      a - b
    )[0] ?? 0;
  const start = Math.max(0, at - SNIPPET_CHARS / 3);
  const end = Math.min(text.length, start + SNIPPET_CHARS);
  return `${start > 0 ? "…" : ""}${text.slice(start, end).trim()}${end < text.length ? "…" : ""}`;
}

export class SiteIndex {
  #dir: string;
  #pages = new Map<string, SitePage>();
  #search: MiniSearch<Passage> | null = null;
  #loadedMtime = -1;

  /** `siteDir` is `content/site`. */
  constructor(siteDir: string) {
    this.#dir = siteDir;
  }

  /** Every cached page's listing entry, in `pages.json` order. */
  async list(): Promise<Omit<SitePage, "text">[]> {
    await this.#fresh();
    return [...this.#pages.values()].map(({ text: _text, ...entry }) => entry);
  }

  /** A page by URL (or by path, e.g. "/about"), or null. */
  async page(urlOrPath: string): Promise<SitePage | null> {
    await this.#fresh();
    const direct = this.#pages.get(urlOrPath);
    if (direct) return direct;
    const path = urlOrPath.startsWith("/")
      ? urlOrPath
      : (URL.canParse(urlOrPath) ? new URL(urlOrPath).pathname : `/${urlOrPath}`);
    for (const page of this.#pages.values()) {
      if (new URL(page.url).pathname.replace(/\/$/, "") === path.replace(/\/$/, "")) return page;
    }
    return null;
  }

  /** The best passages for `query`, best first. */
  async search(query: string, limit = 5): Promise<SiteHit[]> {
    await this.#fresh();
    if (!this.#search) return [];
    const results = this.#search.search(query, { prefix: true, fuzzy: 0.15, combineWith: "OR" });
    return results.slice(0, limit).map((r) => ({
      url: r.url as string,
      title: r.title as string,
      heading: r.heading as string,
      snippet: snippet(r.text as string, r.terms),
      score: Math.round(r.score * 100) / 100,
    }));
  }

  /** Reloads when `pages.json` changed since the last load. */
  async #fresh(): Promise<void> {
    const listing = join(this.#dir, "pages.json");
    let mtime = 0;
    try {
      mtime = (await Deno.stat(listing)).mtime?.getTime() ?? 0;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        this.#pages.clear();
        this.#search = null;
        return;
      }
      throw error;
    }
    if (mtime === this.#loadedMtime) return;
    const entries = PagesFile.parse(JSON.parse(await Deno.readTextFile(listing)));
    const pages = new Map<string, SitePage>();
    const docs: Passage[] = [];
    for (const entry of entries) {
      const text = await Deno.readTextFile(join(this.#dir, entry.file));
      pages.set(entry.url, {
        url: entry.url,
        title: entry.title,
        fetchedAt: entry.fetchedAt,
        text,
      });
      for (const p of passages(text, entry.title)) {
        docs.push({
          id: docs.length,
          url: entry.url,
          title: entry.title,
          heading: p.heading,
          text: p.text,
        });
      }
    }
    const search = new MiniSearch<Passage>({
      fields: ["title", "heading", "text"],
      storeFields: ["url", "title", "heading", "text"],
      searchOptions: { boost: { heading: 2, title: 1.5 } },
    });
    search.addAll(docs);
    this.#pages = pages;
    this.#search = search;
    this.#loadedMtime = mtime;
  }
}
