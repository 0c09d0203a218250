/**
 * The operator's words for the page (site name, Terra's name, gate text, how to get a code,
 * greeting, suggested questions, the away text), published by the worker through the relay
 * as `GET /api/site`, so the static page needs no rebuild when they change. A relay that
 * does not know the route yet, or cannot be reached, leaves the page with neutral words.
 */
import type { SiteProfile } from "../../lib/protocol.ts";

/**
 * The page's own fallback. Written here rather than imported from the protocol module's
 * default, because importing a value from there would pull zod into the page's bundle.
 */
export const FALLBACK_WORDS: SiteProfile = {
  siteName: "Terrarium",
  assistantName: "Terra",
  gateText: "Terra is an AI assistant that answers questions about this site and its author.",
  accessHelp: "Ask the site owner for an access code.",
  greeting: "Hi, I'm Terra. Ask me anything about this site.",
  suggestions: [],
  offlineText:
    "Terra is offline right now — leave a question and it will be answered when Terra is back.",
};

/** Keeps only well-formed fields of what the relay sent; the rest comes from the fallback. */
export function siteWords(raw: unknown): SiteProfile {
  const words: SiteProfile = { ...FALLBACK_WORDS, suggestions: [] };
  if (!raw || typeof raw !== "object") return { ...FALLBACK_WORDS };
  const record = raw as Record<string, unknown>;
  for (const key of Object.keys(FALLBACK_WORDS) as (keyof SiteProfile)[]) {
    const value = record[key];
    if (key === "suggestions") continue;
    if (typeof value === "string" && value.trim()) words[key] = value.trim().slice(0, 1200);
  }
  const suggestions = Array.isArray(record.suggestions) ? record.suggestions : [];
  words.suggestions = suggestions
    .filter((s): s is string => typeof s === "string" && s.trim().length > 0)
    .map((s) => s.trim().slice(0, 160))
    .slice(0, 4);
  return words;
}

/** Fetches the words once (from `RelayApi.site()`); never fails. */
export async function loadSiteWords(api: { site(): Promise<unknown> }): Promise<SiteProfile> {
  try {
    return siteWords(await api.site());
  } catch {
    return { ...FALLBACK_WORDS };
  }
}
