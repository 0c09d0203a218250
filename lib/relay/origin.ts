/**
 * The `Origin` check for browser WebSocket handshakes (SPEC §3, OWASP WebSocket cheat
 * sheet): browsers send `Origin` and cannot be trusted to stay on our site otherwise.
 * A handshake without `Origin` is a non-browser client, judged by its credentials alone.
 */
import type { Logger } from "../log.ts";

/** Whether the request's `Origin` (if any) is allowed. */
export function originAllowed(
  headers: Headers,
  allowedOrigins: readonly string[],
  trustProxy: boolean,
): boolean {
  const origin = headers.get("origin");
  if (origin === null) return true;
  if (allowedOrigins.length > 0) return allowedOrigins.includes(origin);
  // Default: the relay's own origin. Behind TLS-terminating nginx the scheme differs, so
  // compare hosts; the forwarded host counts only when the proxy is trusted.
  const host = (trustProxy && headers.get("x-forwarded-host")) || headers.get("host");
  try {
    return host !== null && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** Refused origins and when each was last logged; bounded, as origins are client input. */
const warnedAt = new Map<string, number>();
const WARN_EVERY_MS = 60_000;
const MAX_WARNED = 1_000;

/**
 * `originAllowed`, logging one warning per refused origin per minute with what was
 * expected: a page on another host reconnects forever (about once a second) and the
 * operator otherwise never learns why.
 */
export function checkOrigin(
  headers: Headers,
  config: { allowedOrigins: readonly string[]; trustProxy: boolean },
  log: Logger,
  nowMs = Date.now(),
): boolean {
  if (originAllowed(headers, config.allowedOrigins, config.trustProxy)) return true;
  const origin = (headers.get("origin") ?? "").slice(0, 200);
  const last = warnedAt.get(origin);
  if (last === undefined || nowMs - last >= WARN_EVERY_MS) {
    if (warnedAt.size >= MAX_WARNED) warnedAt.clear();
    warnedAt.set(origin, nowMs);
    log.warn("websocket origin refused", {
      origin,
      allowedOrigins: config.allowedOrigins.length
        ? config.allowedOrigins.join(",")
        : `unset: only the relay's own host (${headers.get("host")?.slice(0, 200) ?? "?"})`,
      hint: "list the page's origin in ALLOWED_ORIGINS (comma-separated)",
    });
  }
  return false;
}
