/**
 * Whether an address is public: the worker's live-fetch hosts must resolve outside the
 * private, loopback, link-local and shared ranges, or `--deny-net` (and the LLM host's own
 * services) would be in their way. IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is judged as the
 * IPv4 address it carries.
 */
import { lookup } from "node:dns/promises";

const IPV4_PRIVATE: [string, number, string][] = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "shared (CGNAT)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.168.0.0", 16, "private"],
];

function ipv4ToInt(ip: string): number | null {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || !parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255)) {
    return null;
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** Why `address` is not public ("loopback", "private" …), or null when it is. */
export function nonPublicKind(address: string): string | null {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  const v4 = ipv4ToInt(mapped ? mapped[1]! : lower);
  if (v4 !== null) {
    for (const [base, bits, kind] of IPV4_PRIVATE) {
      const mask = (~0 << (32 - bits)) >>> 0;
      if ((v4 & mask) === (ipv4ToInt(base)! & mask)) return kind;
    }
    return null;
  }
  if (lower === "::1") return "loopback";
  if (lower === "::") return "unspecified";
  if (/^fe[89ab]/.test(lower)) return "link-local";
  if (/^f[cd]/.test(lower)) return "private (ULA)";
  return null;
}

/** Resolves `host` as the system does (hosts file included); its addresses. */
export async function resolveHost(host: string): Promise<string[]> {
  const results = await lookup(host, { all: true });
  return results.map((r) => r.address);
}
