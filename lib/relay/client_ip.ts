/** The client IP of a request, honouring `TRUST_PROXY` (see its risk in `RelayConfig`). */
import type { Logger } from "../log.ts";

/**
 * With a trusted proxy: `X-Real-IP` (nginx sets it to the peer it saw), else the last
 * `X-Forwarded-For` entry (the one the proxy appended; earlier ones are client-supplied).
 * A value that is not an IP address is ignored: each distinct garbage string would
 * otherwise be a client key of its own, with its own lockout and limits.
 */
export function clientIp(headers: Headers, remoteIp: string, trustProxy: boolean): string {
  if (!trustProxy) return remoteIp;
  const realIp = headers.get("x-real-ip")?.trim();
  if (realIp) return isIpAddress(realIp) ? realIp : remoteIp;
  const forwarded = headers.get("x-forwarded-for");
  const last = forwarded?.split(",").map((part) => part.trim()).filter(Boolean).at(-1);
  return last && isIpAddress(last) ? last : remoteIp;
}

/** Whether `text` is an IPv4 or IPv6 address literal. */
function isIpAddress(text: string): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) return text.split(".").every((b) => Number(b) <= 255);
  return /^[0-9a-fA-F:.]+$/.test(text) && text.includes(":") && URL.canParse(`http://[${text}]/`);
}

/** Whether `ip` is a loopback address (127.0.0.0/8, ::1, or IPv4-mapped 127.x). */
export function isLoopback(ip: string): boolean {
  const address = ip.toLowerCase().replace(/^\[|\]$/g, "");
  return /^127\.\d+\.\d+\.\d+$/.test(address) || address === "::1" ||
    /^::ffff:127\.\d+\.\d+\.\d+$/.test(address);
}

/** Which peers' forwarding headers to believe: `TRUST_PROXY` true, unset, false. */
export interface ProxyTrust {
  /** Any peer (`TRUST_PROXY=true`). */
  trustProxy: boolean;
  /** Loopback peers only (`TRUST_PROXY` unset). */
  trustLoopbackProxy: boolean;
}

/**
 * `clientIp()` with the trust decided per peer, and one warning (not one per request) when
 * a loopback peer sends forwarding headers that are ignored: a proxy in front while
 * `TRUST_PROXY=false` makes every visitor share the proxy's address, so one guesser locks
 * every visitor out and the per-client caps become caps for the whole site.
 */
export function clientIpResolver(
  trust: ProxyTrust,
  log: Logger,
): (headers: Headers, remoteIp: string) => string {
  let warned = false;
  return function resolveClientIp(headers, remoteIp) {
    const loopback = isLoopback(remoteIp);
    const trusted = trust.trustProxy || (trust.trustLoopbackProxy && loopback);
    if (
      !trusted && loopback && !warned &&
      (headers.has("x-real-ip") || headers.has("x-forwarded-for"))
    ) {
      warned = true;
      log.warn(
        "a local proxy sends X-Real-IP/X-Forwarded-For but TRUST_PROXY=false ignores them: every visitor shares one client key for limits and the lockout; unset TRUST_PROXY (loopback proxies trusted) or set it to true",
        { peer: remoteIp },
      );
    }
    return clientIp(headers, remoteIp, trusted);
  };
}
