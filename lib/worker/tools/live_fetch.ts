/**
 * Guarded live fetches (SPEC §4): only hosts in `LIVE_ALLOWED_HOSTS`, and URLs under
 * `LIVE_ALLOWED_URLS` (for social hosts where only one profile is fair game); https only
 * (plain http only on loopback, which never leaves the machine); a timeout; HTML or text
 * content types only; the body read as a stream and cut at a size cap. Every redirect is
 * checked against the same allowlists before it is followed (and the worker's
 * `--allow-net` grants would stop one that slipped through).
 */
import type { WorkerConfig } from "../config.ts";
import { readCapped } from "../read_capped.ts";
import { ToolError } from "../tool_registry.ts";

/** Bytes of body read at most. */
export const LIVE_FETCH_MAX_BYTES = 512 * 1024;
const ALLOWED_TYPES = /^(text\/html|text\/plain|application\/xhtml\+xml)\b/i;
const MAX_REDIRECTS = 5;

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname.startsWith("127.") || hostname === "[::1]";
}

/** Why `url` may not be fetched, or null when the allowlists permit it. */
export function liveFetchRefusal(url: URL, config: WorkerConfig): string | null {
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopback(url.hostname))) {
    return "Only https URLs may be fetched";
  }
  if (url.username || url.password) return "URLs with credentials may not be fetched";
  const host = url.host.toLowerCase();
  if (config.liveAllowedHosts.includes(host) || config.liveAllowedHosts.includes(url.hostname)) {
    return null;
  }
  if (config.liveAllowedUrls.some((prefix) => url.href.startsWith(prefix))) return null;
  return `The host "${url.hostname}" is not on the live-fetch allowlist`;
}

/** The fetched page: final URL, content type and body text (at most the cap). */
export interface FetchedPage {
  url: string;
  status: number;
  contentType: string;
  body: string;
  truncated: boolean;
}

/** Fetches an allowed URL, streaming at most `LIVE_FETCH_MAX_BYTES` of an HTML/text body. */
export async function fetchAllowed(
  rawUrl: string,
  config: WorkerConfig,
  signal: AbortSignal,
): Promise<FetchedPage> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new ToolError("bad_url", `"${rawUrl}" is not a URL`);
  }
  let response: Response;
  for (let hop = 0;; hop++) {
    const refusal = liveFetchRefusal(url, config);
    if (refusal) {
      throw new ToolError("not_allowed", hop ? `A redirect was refused: ${refusal}` : refusal);
    }
    response = await fetch(url, {
      signal,
      redirect: "manual",
      headers: { accept: "text/html,text/plain;q=0.9", "user-agent": "terrarium-worker" },
    });
    const location = response.headers.get("location");
    if (response.status < 300 || response.status >= 400 || !location) break;
    await response.body?.cancel();
    if (hop >= MAX_REDIRECTS) {
      throw new ToolError("too_many_redirects", "The page redirects too often");
    }
    url = new URL(location, url);
  }
  const contentType = response.headers.get("content-type") ?? "";
  if (!ALLOWED_TYPES.test(contentType)) {
    await response.body?.cancel();
    throw new ToolError(
      "unsupported_type",
      `The page is "${contentType || "unknown"}", not HTML or text`,
    );
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new ToolError("http_error", `The site answered ${response.status}`);
  }
  const { text, truncated } = await readCapped(response.body, LIVE_FETCH_MAX_BYTES);
  return { url: url.href, status: response.status, contentType, body: text, truncated };
}
