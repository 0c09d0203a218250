/** The client IP of a request, honouring `TRUST_PROXY` (see its risk in `RelayConfig`). */

/**
 * With a trusted proxy: `X-Real-IP` (nginx sets it to the peer it saw), else the last
 * `X-Forwarded-For` entry (the one the proxy appended; earlier ones are client-supplied).
 */
export function clientIp(headers: Headers, remoteIp: string, trustProxy: boolean): string {
  if (!trustProxy) return remoteIp;
  const realIp = headers.get("x-real-ip")?.trim();
  if (realIp) return realIp;
  const forwarded = headers.get("x-forwarded-for");
  const last = forwarded?.split(",").map((part) => part.trim()).filter(Boolean).at(-1);
  return last ?? remoteIp;
}
