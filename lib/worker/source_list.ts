/**
 * The sources of one turn (issue 16): the cached pages, GitHub files and live or web URLs
 * its tools returned, in the order they were first returned, one per URL, at most
 * `MAX_SOURCES`. Only http(s) URLs are kept, so the page can link every one safely.
 */
import { MAX_SOURCES, Source, type SourceKind } from "../protocol.ts";

export class SourceList {
  #byUrl = new Map<string, Source>();

  /** Adds sources; bad URLs, repeats and anything past the cap are dropped. */
  add(sources: Iterable<{ url: string; title?: string; kind: SourceKind }>): void {
    for (const raw of sources) {
      if (this.#byUrl.size >= MAX_SOURCES) return;
      const title = (raw.title ?? "").replace(/\s+/g, " ").trim().slice(0, 300);
      const parsed = Source.safeParse({ url: raw.url, title: title || raw.url, kind: raw.kind });
      if (!parsed.success) continue;
      // A repeat keeps its first kind and title; an untitled first sighting takes a title.
      const known = this.#byUrl.get(parsed.data.url);
      if (!known) this.#byUrl.set(parsed.data.url, parsed.data);
      else if (known.title === known.url && title) known.title = parsed.data.title;
    }
  }

  /** The sources so far. */
  list(): Source[] {
    return [...this.#byUrl.values()].map((s) => ({ ...s }));
  }

  get size(): number {
    return this.#byUrl.size;
  }
}
