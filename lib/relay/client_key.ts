/**
 * The key that limits, lockouts and socket caps count a client under: an IPv4 address as
 * it is, an IPv6 address by its /64 (one subscriber usually holds a whole /64, so keying on
 * the exact address lets one client rotate through 2^64 identities), and an IPv4-mapped
 * IPv6 address (`::ffff:192.0.2.1`) as the IPv4 address it maps.
 */

/** The limit key of `ip`: `192.0.2.1`, or `2001:db8:1:2::/64`; anything unparsable as is. */
export function clientKey(ip: string): string {
  const address = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  if (!address.includes(":")) return address;
  const groups = expandIpv6(address.split("%")[0]!);
  if (!groups) return address;
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) {
    const [hi, lo] = [groups[6]!, groups[7]!];
    return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join(".");
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (with `::` and a dotted IPv4 tail), or null. */
function expandIpv6(address: string): number[] | null {
  let text = address.toLowerCase();
  const dotted = text.match(/^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (dotted) {
    const bytes = dotted.slice(2).map(Number);
    if (bytes.some((b) => b > 255)) return null;
    text = `${dotted[1]}${((bytes[0]! << 8) | bytes[1]!).toString(16)}:${
      ((bytes[2]! << 8) | bytes[3]!).toString(16)
    }`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) => part === "" ? [] : part.split(":");
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const parts = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  const groups = parts.map((p) => /^[0-9a-f]{1,4}$/.test(p) ? parseInt(p, 16) : NaN);
  return groups.some(Number.isNaN) ? null : groups;
}
