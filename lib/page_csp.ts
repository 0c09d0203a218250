/**
 * The chat page's Content-Security-Policy, written into its HTML by the web build and sent
 * as a header by the relay: nothing inline, nothing from elsewhere but the relay's API.
 */

/** The policy for a page whose API is at `apiBase` ("" for its own origin). */
export function pageCsp(apiBase = ""): string {
  const connect = ["'self'"];
  if (apiBase) {
    const origin = new URL(apiBase).origin;
    connect.push(origin, origin.replace(/^http/, "ws"));
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${connect.join(" ")}`,
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
}
