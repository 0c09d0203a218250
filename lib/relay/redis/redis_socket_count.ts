/**
 * Open sockets per client key across relays, approximately (issue 14 asks to say how): each
 * socket is a member of the key's sorted set, scored with its lease's expiry. A relay renews
 * the leases of its open sockets every `renewMs`; a relay that dies stops renewing, and its
 * sockets drop out of every count within one lease (`leaseMs`, 30 s by default). So the count
 * can be too high for at most one lease after a relay crash, never too low while relays
 * live. Acquiring checks and adds in one script, so relays racing for the last place cannot
 * both get it. While Redis is unavailable `acquire()` grants (fail open: the relay's own
 * `SocketSlots` still caps its share, and refusing would turn a Redis outage into a storm of
 * page reconnects); a renewal re-adds the relay's open sockets, so those opened during the
 * outage (or lost with Redis's data) are counted again within `renewMs` of Redis coming back.
 * The price: a renewal racing a close may count that closed socket for one more lease.
 */
import type { GlobalSocketCount, SocketLease } from "./global_limits.ts";
import type { RedisConnection } from "./redis_connection.ts";
import { StoreUnavailableError } from "./store_unavailable_error.ts";

/** KEYS: the key's set. ARGV: now ms, max, member, expiry ms. 1 when granted. */
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
`;

/** KEYS: the key's set. ARGV: expiry ms, then members. Renews (or re-adds) each member. */
const RENEW = `
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`;

/** Sockets per client key counted across all relays on one Redis. */
export class RedisSocketCount implements GlobalSocketCount {
  readonly #redis: RedisConnection;
  readonly #max: number;
  readonly #relayId: string;
  readonly #leaseMs: number;
  readonly #prefix: string;
  readonly #now: () => number;
  /** This relay's sockets: client key → socket members. */
  #held = new Map<string, Set<string>>();
  #nextId = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** `relayId` names this relay's sockets; `max` is `SocketSlots.maxPerKey`. */
  constructor(
    redis: RedisConnection,
    options: {
      relayId: string;
      max: number;
      leaseMs?: number;
      renewMs?: number;
      prefix?: string;
      now?: () => number;
    },
  ) {
    this.#redis = redis;
    this.#max = options.max;
    this.#relayId = options.relayId;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#prefix = options.prefix ?? "terrarium:";
    this.#now = options.now ?? Date.now;
    const renewMs = options.renewMs ?? Math.floor(this.#leaseMs / 3);
    this.#timer = setInterval(() => void this.renew().catch(() => {}), renewMs);
    Deno.unrefTimer(this.#timer);
  }

  #key(key: string): string {
    return `${this.#prefix}sockets:{${key}}`;
  }

  async acquire(key: string): Promise<SocketLease | null> {
    const member = `${this.#relayId}:${++this.#nextId}`;
    const now = this.#now();
    let granted: number;
    try {
      granted = await this.#redis.eval<number>(ACQUIRE, [this.#key(key)], [
        String(now),
        String(this.#max),
        member,
        String(now + this.#leaseMs),
      ]);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      granted = 1; // counted by nobody; the relay's own cap still holds
    }
    if (granted !== 1) return null;
    let held = this.#held.get(key);
    if (!held) this.#held.set(key, held = new Set());
    held.add(member);
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        const mine = this.#held.get(key);
        mine?.delete(member);
        if (mine?.size === 0) this.#held.delete(key);
        try {
          await this.#redis.command(["ZREM", this.#key(key), member]);
        } catch {
          // Not removed (Redis away, or the connection closed at shutdown): it ages out when
          // its lease ends. A socket's close handler must never see a rejection.
        }
      },
    };
  }

  async count(key: string): Promise<number> {
    return await this.#redis.command<number>(
      ["ZCOUNT", this.#key(key), `(${this.#now()}`, "+inf"],
    );
  }

  /** Extends the leases of this relay's open sockets (runs every `renewMs` by itself). */
  async renew(): Promise<void> {
    const expiry = String(this.#now() + this.#leaseMs);
    for (const [key, members] of this.#held) {
      await this.#redis.eval(RENEW, [this.#key(key)], [expiry, ...members]);
    }
  }

  /** Stops renewing (the sockets' leases end on their own). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
