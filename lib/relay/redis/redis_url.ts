/**
 * Where the Redis engine connects, from `REDIS_URL` (`redis://` or `rediss://` for TLS) and
 * `REDIS_PASSWORD`. The password may be in the URL or in its own variable (so it can live in
 * a credentials file apart from the URL); both at once is refused as ambiguous.
 */

/** A resolved Redis endpoint: what the client connects to and what the relay must grant. */
export interface RedisEndpoint {
  /** The URL handed to the client, without the password. */
  url: string;
  /** `host:port` for `--allow-net` (port 6379 when the URL names none). */
  netHost: string;
  tls: boolean;
  username: string | undefined;
  password: string | undefined;
  /** The logical database (`/N` in the URL), 0 by default. */
  database: number;
}

/** Redis's default port (the URL may leave it out). */
const DEFAULT_PORT = 6379;

/** Parses `REDIS_URL` (and `REDIS_PASSWORD`); throws a message naming the variable. */
export function parseRedisUrl(raw: string, passwordVar?: string): RedisEndpoint {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError("Cannot parse REDIS_URL: not a URL (use redis://host:port or rediss://)");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new TypeError(
      `Cannot parse REDIS_URL: scheme "${url.protocol}" is not redis: or rediss:`,
    );
  }
  if (!url.hostname) throw new TypeError("Cannot parse REDIS_URL: no host");
  const path = url.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d{1,2}$/.test(path)) {
    throw new TypeError(`Cannot parse REDIS_URL: database "${path}" is not a number`);
  }
  if (url.search || url.hash) {
    throw new TypeError("Cannot parse REDIS_URL: query and fragment are not supported");
  }
  const inUrl = url.password ? decodeURIComponent(url.password) : undefined;
  const fromVar = passwordVar === "" ? undefined : passwordVar;
  if (inUrl !== undefined && fromVar !== undefined) {
    throw new TypeError(
      "Cannot use REDIS_PASSWORD: REDIS_URL has a password too (set it in one place)",
    );
  }
  const port = url.port ? Number(url.port) : DEFAULT_PORT;
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  url.username = "";
  url.password = "";
  return {
    url: url.href.replace(/\/$/, ""),
    netHost: `${url.hostname}:${port}`,
    tls: url.protocol === "rediss:",
    username,
    password: inUrl ?? fromVar,
    database: path === "" ? 0 : Number(path),
  };
}
