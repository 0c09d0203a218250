/**
 * The relay's Deno permission flags (SPEC §5), derived from its config. This is the one
 * source of truth: `deno task relay`, the tests and `deno compile` all take these flags.
 */
import { dirname } from "node:path";
import { isRemoteKv, RELAY_ENV_NAMES, type RelayConfig } from "./config.ts";
import { parseRedisUrl } from "./redis/redis_url.ts";

/** Options of `relayPermissionFlags()`. */
export interface RelayPermissionOptions {
  /**
   * Every port an instance of this build may listen on, on `config.hostname`: two relays on
   * one host (`terrarium-relay@4100`, `@4101`) run one binary, each with its own `PORT`.
   * @default {[config.port]}
   */
  ports?: number[];
}

/** Flags for running (or compiling) the relay: listen, its store (KV dir or Redis host), its env. */
export function relayPermissionFlags(
  config: RelayConfig,
  envFile?: string,
  options: RelayPermissionOptions = {},
): string[] {
  const read: string[] = [];
  const write: string[] = [];
  const ports = options.ports?.length ? [...new Set(options.ports)] : [config.port];
  const net = ports.map((port) => `${config.hostname}:${port}`);
  if (config.redisUrl !== "") {
    // The Redis engine: exactly its host and port, and no KV file.
    net.push(parseRedisUrl(config.redisUrl, config.redisPassword).netHost);
  } else if (isRemoteKv(config.kvPath)) {
    net.push(new URL(config.kvPath).host);
  } else if (config.kvPath !== ":memory:") {
    // SQLite writes `-wal`/`-shm` files beside the database, so grant the directory.
    const kvDir = dirname(config.kvPath);
    read.push(kvDir);
    write.push(kvDir);
  }
  if (config.webDir) read.push(config.webDir);
  if (envFile) read.push(envFile);
  const flags = [
    "--unstable-kv",
    "--no-prompt",
    `--allow-net=${net.join(",")}`,
    `--allow-env=${RELAY_ENV_NAMES.join(",")}`,
  ];
  if (read.length) flags.push(`--allow-read=${read.join(",")}`);
  if (write.length) flags.push(`--allow-write=${write.join(",")}`);
  return flags;
}
