/**
 * One connection to Redis with the relay's habits: commands fail at once while Redis is away
 * (no offline queue, so a write is never sent minutes later behind the caller's back), every
 * failure of the server or the socket comes out as `StoreUnavailableError`, the client
 * reconnects on its own with full-jitter backoff, and `health()` says up or down for
 * `/api/health` and `/metrics`.
 *
 * The client is node-redis's core package (`@redis/client`): no dependencies, and with its
 * maintenance notifications off it reads no environment variable, so the relay grants it
 * nothing beyond `--allow-net=<the Redis host>`.
 */
import { createClient, ErrorReply } from "@redis/client";
import type { Logger } from "../../log.ts";
import { backoffDelay } from "../../backoff.ts";
import { StoreUnavailableError } from "./store_unavailable_error.ts";
import type { RedisEndpoint } from "./redis_url.ts";

/** The node-redis client this module wraps. */
export type RedisClient = ReturnType<typeof createClient>;

/** Whether Redis answers, since when, and how often it went away. */
export interface RedisHealth {
  up: boolean;
  /** When `up` last changed (ms since the epoch). */
  sinceMs: number;
  /** Times the connection was lost since the relay started. */
  outages: number;
}

/** How a connection behaves; the defaults suit the relay. */
export interface RedisConnectionOptions {
  /** Where warnings about lost connections go. */
  log?: Logger;
  /** The first reconnect waits up to this long. @default 100 */
  reconnectBaseMs?: number;
  /** No reconnect waits longer. @default 5_000 */
  reconnectCapMs?: number;
  /** A connect attempt gives up after this long. @default 5_000 */
  connectTimeoutMs?: number;
  /**
   * A command waiting longer for its reply fails (the socket may be dead without a reset).
   * @default 10_000
   */
  commandTimeoutMs?: number;
}

/** A reconnecting connection to Redis (commands, or subscriptions on a `duplicate()`). */
export class RedisConnection {
  readonly endpoint: RedisEndpoint;
  readonly #options: RedisConnectionOptions;
  readonly #client: RedisClient;
  #health: RedisHealth = { up: false, sinceMs: Date.now(), outages: 0 };
  #closed = false;
  #scripts = new Map<string, string>();

  constructor(endpoint: RedisEndpoint, options: RedisConnectionOptions = {}) {
    this.endpoint = endpoint;
    this.#options = options;
    const baseMs = options.reconnectBaseMs ?? 100;
    const capMs = options.reconnectCapMs ?? 5_000;
    this.#client = createClient({
      url: endpoint.url,
      ...(endpoint.username === undefined ? {} : { username: endpoint.username }),
      ...(endpoint.password === undefined ? {} : { password: endpoint.password }),
      database: endpoint.database,
      // Off: it reads REDIS_DEBUG_MAINTENANCE from the environment (a permission we would
      // have to grant) and serves Redis Enterprise's live migrations, which we do not use.
      maintNotifications: "disabled",
      disableOfflineQueue: true,
      commandOptions: { timeout: options.commandTimeoutMs ?? 10_000 },
      socket: {
        ...(endpoint.tls ? { tls: true as const } : {}),
        connectTimeout: options.connectTimeoutMs ?? 5_000,
        // Never gives up: the relay outlives any Redis outage (issue 14).
        reconnectStrategy: (retries: number) => backoffDelay(retries + 1, { baseMs, capMs }),
      },
    });
    this.#client.on("ready", () => this.#setUp(true));
    this.#client.on("end", () => this.#setUp(false));
    this.#client.on("reconnecting", () => this.#setUp(false));
    // Without a listener node-redis rethrows socket errors; the state change is what matters.
    this.#client.on("error", (error: Error) => {
      this.#setUp(false);
      options.log?.debug("redis connection error", { error: error.message });
    });
  }

  /** Connects (retrying with backoff); resolves once Redis answers, rejects after `timeoutMs`. */
  async connect(timeoutMs = 30_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connecting = this.#client.connect().then(() => {});
    // A failed first connect is retried by the client; only the caller's wait is bounded.
    connecting.catch(() => {});
    try {
      await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new StoreUnavailableError(
                  `Cannot connect to Redis at ${this.endpoint.netHost} within ${timeoutMs} ms`,
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Up or down, for `/api/health` and `/metrics`. */
  health(): RedisHealth {
    return { ...this.#health };
  }

  /** Whether commands can be sent now. */
  get up(): boolean {
    return this.#client.isReady;
  }

  /** The raw client, for calls this module does not wrap (pub/sub on a duplicate). */
  get client(): RedisClient {
    return this.#client;
  }

  /** Runs one call on the client; failures of Redis come out as `StoreUnavailableError`. */
  async run<T>(call: (client: RedisClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error("The Redis connection is closed");
    try {
      return await call(this.#client);
    } catch (error) {
      if (isUnavailable(error)) {
        throw new StoreUnavailableError(
          `Redis at ${this.endpoint.netHost} is unavailable: ${(error as Error).message}`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** Sends one command (`["INCR", key]`). */
  command<T = unknown>(args: string[]): Promise<T> {
    return this.run((client) => client.sendCommand(args) as Promise<T>);
  }

  /**
   * Runs a Lua script by its SHA (EVALSHA), loading it on NOSCRIPT: after a Redis restart
   * the script cache is empty, and the first call after reconnecting loads it again.
   */
  async eval<T = unknown>(lua: string, keys: string[], args: string[]): Promise<T> {
    let sha = this.#scripts.get(lua);
    if (sha === undefined) {
      sha = await this.command<string>(["SCRIPT", "LOAD", lua]);
      this.#scripts.set(lua, sha);
    }
    const call = ["EVALSHA", sha, String(keys.length), ...keys, ...args];
    try {
      return await this.command<T>(call);
    } catch (error) {
      if (!(error instanceof ErrorReply) || !error.message.startsWith("NOSCRIPT")) throw error;
      sha = await this.command<string>(["SCRIPT", "LOAD", lua]);
      this.#scripts.set(lua, sha);
      return await this.command<T>(["EVALSHA", sha, String(keys.length), ...keys, ...args]);
    }
  }

  /** A second connection to the same Redis (a subscriber needs its own). */
  duplicate(): RedisConnection {
    return new RedisConnection(this.endpoint, this.#options);
  }

  /** Closes the connection; pending commands finish first. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#client.isOpen) {
      await this.#client.close().catch(() => this.#client.destroy());
    } else {
      // Still reconnecting: destroy stops the retry loop.
      try {
        this.#client.destroy();
      } catch { /* never opened */ }
    }
  }

  #setUp(up: boolean): void {
    // Closing on purpose (shutdown) is no outage and worth no warning.
    if (this.#health.up === up || this.#closed) return;
    if (!up) {
      this.#health.outages++;
      this.#options.log?.warn("redis connection lost; reconnecting", {
        host: this.endpoint.netHost,
      });
    } else if (this.#health.outages > 0) {
      this.#options.log?.info("redis connection back", { host: this.endpoint.netHost });
    }
    this.#health = { ...this.#health, up, sinceMs: Date.now() };
  }
}

/**
 * Replies Redis gives when it is up but cannot take the write now (the first word of an
 * error reply): these are the server's state, not a bad command, so they count as unavailable.
 */
const UNAVAILABLE_REPLIES =
  /^(LOADING|MISCONF|OOM|READONLY|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|NOREPLICAS)\b/;

/**
 * Whether `error` from the client means Redis is unavailable (rather than a bug in a command):
 * any failure that is not an error reply (socket closed, client offline, timeout), and the
 * server-state replies above.
 */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof StoreUnavailableError) return true;
  return !(error instanceof ErrorReply) || UNAVAILABLE_REPLIES.test(error.message);
}
