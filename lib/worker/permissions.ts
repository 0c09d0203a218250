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
