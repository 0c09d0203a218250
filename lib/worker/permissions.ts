/**
 * The worker's Deno permission flags (SPEC §5), derived from its config: the one source of
 * truth for `deno task worker`, the tests and `deno compile`. The worker can reach only
 * the relay, the agent (and its health URL), SearxNG and the live-fetch allowlist; read
 * only its content dir and env file; write only its enhancement and log dirs; read only
 * its own variables. Nothing else: no run, ffi or sys.
 */
import { WORKER_ENV_NAMES, type WorkerConfig } from "./config.ts";

/**
 * Private, loopback and link-local ranges a public-facing worker never needs. Deno 2.9
 * takes IPv4 CIDR ranges but only single IPv6 addresses, so of IPv6 only loopback is here.
 *
 * Nor can it deny the IPv4-mapped IPv6 forms (`::ffff:127.0.0.1`): it refuses IPv6 CIDR
 * ranges, and parses a single mapped address as the IPv4 one, which a name that resolves to
 * the mapped form still gets past (tested on 2.9.6). `deniedAddress()` covers those forms
 * instead, and live fetches check the address a name resolves to before fetching.
 */
export const PRIVATE_RANGES = [
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "100.64.0.0/10",
  "[::1]",
] as const;

/** The filesystem and network grants the worker needs. */
export interface WorkerGrants {
  /** `host:port` entries. */
  net: string[];
  read: string[];
  write: string[];
  env: string[];
  /** CIDR ranges denied even though a granted name could resolve into them. */
  denyNet: string[];
}

/** `host:port` of a URL, with the scheme's default port made explicit. */
export function hostPort(url: string): string {
  const u = new URL(url);
  const port = u.port || (u.protocol === "https:" || u.protocol === "wss:" ? "443" : "80");
  return `${u.hostname}:${port}`;
}

/** Whether `host` is an IP literal or a loopback name (its range is then needed, not denied). */
function ipv4Of(host: string): number[] | null {
  const name = host === "localhost" ? "127.0.0.1" : host;
  const parts = name.split(".").map(Number);
  return parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255)
    ? parts
    : null;
}

function inRange(ip: number[], cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const baseIp = ipv4Of(base!);
  if (!baseIp) return false;
  const toInt = (p: number[]) => ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (toInt(ip) & mask) === (toInt(baseIp) & mask);
}

function isLanName(host: string): boolean {
  if (ipv4Of(host) || host.startsWith("[")) return false;
  return !host.includes(".") || /\.(local|lan|internal|home\.arpa|localdomain)$/i.test(host);
}

/** A live-fetch host entry ("example.com" or "example.com:8443") as a grant. */
function liveHostGrant(host: string): string {
  return host.includes(":") ? host : `${host}:443`;
}

/** The grants the worker's config needs. */
export function workerGrants(config: WorkerConfig, envFile?: string): WorkerGrants {
  const urls = [
    config.apiBaseUrl,
    config.workerWsUrl,
    config.agentBaseUrl,
    config.agentHealthUrl,
    config.searchApiUrl,
    config.liveSiteBaseUrl,
    ...config.liveAllowedUrls,
  ].filter(Boolean);
  const net = new Set(urls.map(hostPort));
  for (const host of config.liveAllowedHosts) net.add(liveHostGrant(host));
  const netList = [...net].sort();

  // Keep a private range open only when a granted host is an IP (or localhost) inside it;
  // names are assumed public, so DNS rebinding cannot turn them into the LLM host's services.
  const literalIps = netList.map((entry) => ipv4Of(entry.replace(/:\d+$/, ""))).filter((ip) =>
    ip !== null
  );
  const hasLoopbackName = netList.some((entry) => /^(localhost|\[::1\]):/.test(entry));
  // A LAN name (gpu-box, gpu.lan, agent.internal) resolves privately by design: then no
  // private range can be denied without breaking it.
  const hasLanName = netList.some((entry) => isLanName(entry.replace(/:\d+$/, "")));
  const denyNet = hasLanName ? [] : PRIVATE_RANGES.filter((range) => {
    if (range === "[::1]") return !hasLoopbackName;
    return !literalIps.some((ip) => inRange(ip, range));
  });
  const write = [config.enhancementDir, config.chatLogDir].filter(Boolean);
  // The enhancement dir is read too: the day's request count is the files in it.
  const read = [config.contentDir, config.enhancementDir, ...(envFile ? [envFile] : [])];
  return { net: netList, read, write, env: [...WORKER_ENV_NAMES], denyNet: [...denyNet] };
}

/** Flags for running (or compiling) the worker with exactly its grants. */
export function workerPermissionFlags(config: WorkerConfig, envFile?: string): string[] {
  const grants = workerGrants(config, envFile);
  const flags = [
    "--no-prompt",
    `--allow-net=${grants.net.join(",")}`,
    `--allow-read=${grants.read.join(",")}`,
    `--allow-env=${grants.env.join(",")}`,
  ];
  if (grants.write.length) flags.push(`--allow-write=${grants.write.join(",")}`);
  if (grants.denyNet.length) flags.push(`--deny-net=${grants.denyNet.join(",")}`);
  return flags;
}

/** IPv6 ranges denied with the IPv4 ones (unique local, link-local, unspecified), as prefixes of the expanded form. */
const PRIVATE_IPV6 = [/^f[cd]/, /^fe[89ab]/, /^0{4}(:0{4}){7}$/];

/** The eight 16-bit groups of an IPv6 address, expanded ("::1" → 0000:…:0001), or null. */
function ipv6Groups(address: string): string[] | null {
  let text = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "").toLowerCase();
  // A dotted IPv4 tail (::ffff:127.0.0.1) is two groups.
  const tail = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const v4 = ipv4Of(tail[2]!);
    if (!v4) return null;
    text = `${tail[1]}${((v4[0]! << 8) | v4[1]!).toString(16)}:${
      ((v4[2]! << 8) | v4[3]!).toString(16)
    }`;
  }
  if (!/^[0-9a-f:]+$/.test(text) || (text.match(/::/g) ?? []).length > 1) return null;
  const [head, rest] = text.includes("::") ? text.split("::") : [text, undefined];
  const left = head ? head.split(":") : [];
  const right = rest ? rest.split(":") : [];
  const missing = 8 - left.length - right.length;
  if (rest === undefined ? missing !== 0 : missing < 1) return null;
  const groups = [...left, ...Array(rest === undefined ? 0 : missing).fill("0"), ...right];
  if (groups.some((g) => g.length === 0 || g.length > 4)) return null;
  return groups.map((g) => g.padStart(4, "0"));
}

/**
 * Whether the worker must not connect to `address` (an IP as `Deno.connect` reports it):
 * inside a denied IPv4 range, directly or IPv4-mapped (`::ffff:a.b.c.d`), or, when any
 * range is denied at all, loopback or a private IPv6 range.
 */
export function deniedAddress(address: string, denyNet: readonly string[]): boolean {
  if (denyNet.length === 0) return false;
  const v4 = ipv4Of(address);
  const groups = v4 ? null : ipv6Groups(address);
  let ip = v4;
  if (groups && groups.slice(0, 5).every((g) => g === "0000") && groups[5] === "ffff") {
    const [hi, lo] = [parseInt(groups[6]!, 16), parseInt(groups[7]!, 16)];
    ip = [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];
  }
  if (ip) return denyNet.some((range) => range.includes("/") && inRange(ip, range));
  if (!groups) return false;
  const expanded = groups.join(":");
  if (expanded === "0000:0000:0000:0000:0000:0000:0000:0001") return denyNet.includes("[::1]");
  return PRIVATE_IPV6.some((prefix) => prefix.test(expanded));
}
