/**
 * Guarded live fetches (SPEC §4): only hosts in `LIVE_ALLOWED_HOSTS`, and URLs under
 * `LIVE_ALLOWED_URLS` (for social hosts where only one profile is fair game), matched by
 * parsed origin and whole path segments, never as a string prefix; https only (plain http
 * only on loopback, which never leaves the machine); a timeout; HTML or text content types
 * only; the body read as a stream and cut at a size cap. Every redirect is checked against
 * the same allowlists before it is followed (and the worker's `--allow-net` grants would
 * stop one that slipped through). Before each request the host's address is looked up the
 * way fetch will, and a private one (also IPv4-mapped, which `--deny-net` cannot express)
 * is refused: a rebound name cannot reach the LLM host's own services.
 */
import type { WorkerConfig } from "../config.ts";
import { deniedAddress, workerGrants } from "../permissions.ts";
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
  if (config.liveAllowedUrls.some((entry) => urlUnder(url, entry))) return null;
  return `The host "${url.hostname}" is not on the live-fetch allowlist`;
}

/**
 * Whether `url` is at or below the allowlist `entry`: the same origin (scheme, host and
 * port, as parsed) and the entry's path as whole segments, so `https://x.dev/docs` allows
 * `/docs` and `/docs/a` but not `/docsevil`, and `https://github.com` not
 * `https://github.com.evil.example`. An entry's query and fragment are ignored.
 */
export function urlUnder(url: URL, entry: string): boolean {
  let base: URL;
  try {
    base = new URL(entry);
  } catch {
    return false;
  }
  if (url.origin !== base.origin || url.username || url.password) return false;
  const path = base.pathname.replace(/\/+$/, "");
  return path === "" || url.pathname === path || url.pathname.startsWith(`${path}/`);
}

function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith("[") || /^\d+\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * Why the address `url`'s host resolves to may not be reached, or null. The lookup is a TCP
 * connect (closed before a byte is sent), which uses the same system resolver as fetch;
 * IP literals are left to `--deny-net`, which maps `[::ffff:…]` literals to IPv4 itself.
 */
export async function resolvedRefusal(
  url: URL,
  config: WorkerConfig,
  signal: AbortSignal,
): Promise<string | null> {
  if (isIpLiteral(url.hostname) || isLoopback(url.hostname)) return null;
  const { denyNet } = workerGrants(config);
  if (denyNet.length === 0) return null;
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: url.hostname, port, signal });
  } catch {
    return null; // fetch meets the same failure and reports it
  }
  const address = conn.remoteAddr.hostname;
  conn.close();
  return deniedAddress(address, denyNet)
    ? `The host "${url.hostname}" resolves to a private address (${address}), which the worker may not reach`
    : null;
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
    const refusal = liveFetchRefusal(url, config) ?? await resolvedRefusal(url, config, signal);
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
