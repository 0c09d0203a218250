/**
 * The `Origin` check for browser WebSocket handshakes (SPEC §3, OWASP WebSocket cheat
 * sheet): browsers send `Origin` and cannot be trusted to stay on our site otherwise.
 * A handshake without `Origin` is a non-browser client, judged by its credentials alone.
 */

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
