/**
 * The sources under an answer, made safe to link: the relay checks them, but the page
 * treats every field as untrusted all the same (an old relay, a hostile one): http(s) URLs
 * only, one link per URL, a bounded count, and the title used as text, never as markup.
 */
import type { Source } from "../../lib/protocol.ts";

const MAX_SHOWN = 8;
const KIND_WORDS: Record<Source["kind"], string> = {
  page: "page",
  github: "GitHub",
  live: "live page",
  web: "web",
};

/** A source ready to draw: a checked href, a short text, and the kind in words. */
export interface ShownSource {
  href: string;
  text: string;
  kind: string;
}

/** The sources worth linking, in order, from whatever the message carried. */
export function safeSources(raw: unknown): ShownSource[] {
  if (!Array.isArray(raw)) return [];
  const seen = new Set<string>();
  const shown: ShownSource[] = [];
  for (const item of raw) {
    if (shown.length >= MAX_SHOWN) break;
    if (!item || typeof item !== "object") continue;
    const { url, title, kind } = item as Partial<Record<keyof Source, unknown>>;
    if (typeof url !== "string") continue;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      continue;
    }
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") continue;
    if (parsed.username || parsed.password) continue;
    if (seen.has(parsed.href)) continue;
    seen.add(parsed.href);
    const fallback = `${parsed.hostname}${parsed.pathname === "/" ? "" : parsed.pathname}`;
    const text = typeof title === "string" && title.trim() ? title.trim() : fallback;
    shown.push({
      href: parsed.href,
      text: text.replace(/\s+/g, " ").slice(0, 80),
      kind: KIND_WORDS[kind as Source["kind"]] ?? "page",
    });
  }
  return shown;
}

/** The sources as Markdown lines for the transcript. */
export function sourcesMarkdown(raw: unknown): string[] {
  const escape = (text: string) => text.replace(/([\\\[\]()*_`<>])/g, "\\$1");
  return safeSources(raw).map((s) => `- [${escape(s.text)}](<${s.href}>) (${s.kind})`);
}
