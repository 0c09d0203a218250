/**
 * The cross-relay event bus (issue 14, after Centrifugo's Redis engine): every event of a
 * chat is appended to the chat's capped history (a Redis Stream whose entry ids are the
 * events' `seq`) and published on the chat's channel, both in one script, so no subscriber
 * sees an event the history lacks. Each listener gets the chat's events in `seq` order, once:
 * it starts from a given `seq` (resume on any relay: the history fills the gap, then live
 * events follow), drops anything at or below what it delivered, and after a lost subscriber
 * connection catches up from the history before taking live events again.
 *
 * Channel and stream share the chat's hash tag (`{chatId}`), so they also work on Cluster.
 */
import { backoffDelay } from "../../backoff.ts";
import type { RedisConnection } from "./redis_connection.ts";

/** What the bus carries: any JSON event with the chat's sequence number. */
export interface BusEvent {
  seq: number;
}

/** The events after a `seq`, and whether that is all of them (the history is capped). */
export interface BusHistory<T extends BusEvent> {
  events: T[];
  /** False when older events were trimmed (or the history expired): reload from the store. */
  complete: boolean;
}

/** How a listener is told about events, and about a gap the history cannot fill. */
export interface BusListener<T extends BusEvent> {
  /** One event, in `seq` order, never twice. */
  deliver(event: T): void;
  /**
   * Events after `afterSeq` are no longer in the history (trimmed while this listener was
   * away): the caller reloads from the store; delivery goes on from the live events.
   */
  gap(afterSeq: number): void;
}

/** How much history the bus keeps. */
export interface RedisEventBusOptions {
  /** Put before every key and channel. @default "terrarium:" */
  prefix?: string;
  /** Events kept per chat. @default 1000 */
  historyLength?: number;
  /** An idle chat's history is dropped after this long (ms). @default 86_400_000 */
  historyTtlMs?: number;
  /** Live events held back per listener while it catches up. @default 10_000 */
  maxBuffered?: number;
  /**
   * The wait before a failed catch-up is tried again (it is also tried as soon as the
   * command connection is back). @default full-jitter backoff from 50 ms up to 2 s
   */
  catchUpRetryMs?: (failures: number) => number;
}

/**
 * Appends to the history and publishes, or does nothing for a `seq` not above the last one.
 * The history is trimmed here rather than by XADD's MAXLEN, so the highest trimmed `seq` is
 * known (KEYS[2]): a reader asking for events after an older `seq` learns it missed some.
 * KEYS: stream (also the channel), trimmed. ARGV: seq, event json, length kept, ttl ms.
 */
const APPEND_AND_PUBLISH = `
local added = redis.pcall('XADD', KEYS[1], ARGV[1] .. '-1', 'e', ARGV[2])
if type(added) == 'table' and added.err then return 0 end
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[3])
if excess > 0 then
  local gone = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
  local last = string.match(gone[#gone][1], '^(%d+)')
  redis.call('XTRIM', KEYS[1], 'MINID', last .. '-2')
  redis.call('SET', KEYS[2], last)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
redis.call('PUBLISH', KEYS[1], ARGV[2])
return 1
`;
const PUBLISH = APPEND_AND_PUBLISH;

/**
 * `PUBLISH` for a caller that numbers its own event: only when `seq` directly follows the
 * chat's counter (KEYS[3], which it then takes) and nobody holds the chat's lock (KEYS[4]).
 * One round trip instead of lock, number, publish and unlock. ARGV as `PUBLISH`'s.
 */
const PUBLISH_NEXT = `
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if tonumber(redis.call('GET', KEYS[3]) or '0') ~= tonumber(ARGV[1]) - 1 then return 0 end
redis.call('SET', KEYS[3], ARGV[1])
` + APPEND_AND_PUBLISH;

interface ListenerState<T extends BusEvent> {
  listener: BusListener<T>;
  lastSeq: number;
  /** Live events held while catching up from the history; null when live. */
  buffer: T[] | null;
  /** Live events were dropped from a full buffer: the history must be read again. */
  overflowed: boolean;
  /** Failed catch-ups in a row (for the retry's backoff). */
  failures: number;
  /** The pending retry of a failed catch-up. */
  retry?: ReturnType<typeof setTimeout>;
  stopped: boolean;
  /** A catch-up is running (a second one waits for it to finish, then runs). */
  catchingUp: boolean;
  /** Another catch-up was asked for while one ran. */
  again: boolean;
}

/** Catch-up rounds before giving up to the next reconnect (each round reads the history). */
const MAX_CATCH_UP_ROUNDS = 5;

/** Publishes chat events to every relay and delivers them to this relay's listeners. */
export class RedisEventBus<T extends BusEvent = BusEvent> {
  readonly #commands: RedisConnection;
  readonly #subscriber: RedisConnection;
  readonly #prefix: string;
  readonly #historyLength: number;
  readonly #historyTtlMs: number;
  readonly #maxBuffered: number;
  readonly #catchUpRetryMs: (failures: number) => number;
  #chats = new Map<string, Set<ListenerState<T>>>();
  #wasDown = false;

  /** `subscriber` must be a connection of its own (a subscribed connection sends nothing else). */
  constructor(
    commands: RedisConnection,
    subscriber: RedisConnection,
    options: RedisEventBusOptions = {},
  ) {
    this.#commands = commands;
    this.#subscriber = subscriber;
    this.#prefix = options.prefix ?? "terrarium:";
    this.#historyLength = options.historyLength ?? 1000;
    this.#historyTtlMs = options.historyTtlMs ?? 86_400_000;
    this.#maxBuffered = options.maxBuffered ?? 10_000;
    this.#catchUpRetryMs = options.catchUpRetryMs ??
      ((failures) => backoffDelay(failures, { baseMs: 50, capMs: 2_000 }));
    // node-redis subscribes again by itself after a reconnect; what was published while the
    // connection was away is only in the history, so every listener catches up from it.
    // Live events are held from the moment the connection drops: node-redis subscribes again
    // before it says "ready", and an event delivered before the catch-up would skip the gap.
    const down = () => {
      this.#wasDown = true;
      for (const states of this.#chats.values()) {
        for (const state of states) state.buffer ??= [];
      }
    };
    subscriber.client.on("reconnecting", down);
    subscriber.client.on("error", down);
    subscriber.client.on("ready", () => {
      if (!this.#wasDown) return;
      this.#wasDown = false;
      for (const [chatId, states] of this.#chats) {
        for (const state of states) void this.#catchUp(chatId, state);
      }
    });
    // The history is read on the command connection, which may come back after the
    // subscriber: a catch-up that failed for want of it runs now, not on its backoff timer,
    // or the chat's sockets would wait up to that long for events Redis already has.
    if (commands !== subscriber) {
      commands.client.on("ready", () => {
        for (const [chatId, states] of this.#chats) {
          for (const state of states) {
            if (state.failures > 0 && state.buffer) void this.#catchUp(chatId, state);
          }
        }
      });
    }
  }

  /** The chat's stream key, which is also its channel name. */
  #key(chatId: string): string {
    return `${this.#prefix}chat:{${chatId}}:events`;
  }

  /** The highest `seq` trimmed from the chat's history. */
  #trimmedKey(chatId: string): string {
    return `${this.#prefix}chat:{${chatId}}:events_trimmed`;
  }

  /**
   * Appends `event` to the chat's history and publishes it; false when an event with this or
   * a higher `seq` was already published (a retried publish is not delivered twice).
   */
  async publish(chatId: string, event: T): Promise<boolean> {
    if (!Number.isSafeInteger(event.seq) || event.seq < 1) {
      throw new RangeError(`Cannot publish an event with seq "${event.seq}"`);
    }
    const added = await this.#commands.eval<number>(PUBLISH, [
      this.#key(chatId),
      this.#trimmedKey(chatId),
    ], [
      String(event.seq),
      JSON.stringify(event),
      String(this.#historyLength),
      String(this.#historyTtlMs),
    ]);
    return added === 1;
  }

  /**
   * Publishes `event` only if its `seq` directly follows the chat's counter at `keys.seq`
   * (taking that number) and no one holds the chat's lock at `keys.lock`; false when not
   * (nothing published, nothing numbered). The keys must share the chat's hash tag.
   */
  async publishNext(
    chatId: string,
    event: T,
    keys: { seq: string; lock: string },
  ): Promise<boolean> {
    const published = await this.#commands.eval<number>(PUBLISH_NEXT, [
      this.#key(chatId),
      this.#trimmedKey(chatId),
      keys.seq,
      keys.lock,
    ], [
      String(event.seq),
      JSON.stringify(event),
      String(this.#historyLength),
      String(this.#historyTtlMs),
    ]);
    return published === 1;
  }

  /** Whether the chat's history holds the event numbered `seq`. */
  async has(chatId: string, seq: number): Promise<boolean> {
    const id = `${seq}-1`;
    const found = await this.#commands.command<unknown[]>(["XRANGE", this.#key(chatId), id, id]);
    return found.length > 0;
  }

  /** The `seq` of the chat's newest published event (0 when its history is empty or gone). */
  async lastSeq(chatId: string): Promise<number> {
    const [newest] = await this.#commands.command<[string, string[]][]>(
      ["XREVRANGE", this.#key(chatId), "+", "-", "COUNT", "1"],
    );
    return newest ? Number(newest[0].split("-")[0]) : 0;
  }

  /** The chat's events with `seq` above `afterSeq`, oldest first. */
  async history(chatId: string, afterSeq: number): Promise<BusHistory<T>> {
    const key = this.#key(chatId);
    const entries = await this.#commands.command<[string, string[]][]>(
      ["XRANGE", key, `(${afterSeq}-1`, "+"],
    );
    const events = entries.map(([, fields]) => JSON.parse(fields[1]!) as T);
    return { events, complete: await this.#keptSince(chatId, afterSeq) };
  }

  /** Whether no event above `afterSeq` was trimmed from the history (or expired with it). */
  async #keptSince(chatId: string, afterSeq: number): Promise<boolean> {
    const [exists, trimmed] = await Promise.all([
      this.#commands.command<number>(["EXISTS", this.#key(chatId)]),
      this.#commands.command<string | null>(["GET", this.#trimmedKey(chatId)]),
    ]);
    // No history at all: nothing was published yet, or it expired; only a fresh start is whole.
    if (exists === 0) return afterSeq === 0;
    return Number(trimmed ?? 0) <= afterSeq;
  }

  /**
   * Delivers the chat's events above `afterSeq` to `listener`: the history first, then live
   * events, in `seq` order, once. Resolves when subscribed; call the result to stop.
   */
  async subscribe(
    chatId: string,
    afterSeq: number,
    listener: BusListener<T>,
  ): Promise<() => Promise<void>> {
    const state: ListenerState<T> = {
      listener,
      lastSeq: afterSeq,
      buffer: [],
      overflowed: false,
      failures: 0,
      stopped: false,
      catchingUp: false,
      again: false,
    };
    let states = this.#chats.get(chatId);
    if (!states) {
      states = new Set();
      this.#chats.set(chatId, states);
      try {
        await this.#subscriber.run((client) =>
          client.subscribe(this.#key(chatId), (message) => this.#onMessage(chatId, message))
        );
      } catch (error) {
        this.#chats.delete(chatId);
        throw error;
      }
    }
    states.add(state);
    await this.#catchUp(chatId, state);
    return async () => {
      state.stopped = true;
      clearTimeout(state.retry);
      const current = this.#chats.get(chatId);
      if (!current?.delete(state) || current.size > 0) return;
      this.#chats.delete(chatId);
      await this.#subscriber.run((client) => client.unsubscribe(this.#key(chatId)))
        .catch(() => {}); // gone with the connection anyway
    };
  }

  #onMessage(chatId: string, message: string): void {
    let event: T;
    try {
      event = JSON.parse(message) as T;
    } catch {
      return; // not ours
    }
    for (const state of this.#chats.get(chatId) ?? []) {
      if (state.buffer) {
        if (state.buffer.length < this.#maxBuffered) state.buffer.push(event);
        else state.overflowed = true;
      } else {
        this.#deliver(state, event);
      }
    }
  }

  #deliver(state: ListenerState<T>, event: T): void {
    if (event.seq <= state.lastSeq) return; // seen (a replay overlapping the live stream)
    state.lastSeq = event.seq;
    state.listener.deliver(event);
  }

  /** Holds live events, replays the history after the last delivered `seq`, then goes live. */
  async #catchUp(chatId: string, state: ListenerState<T>): Promise<void> {
    state.buffer ??= [];
    clearTimeout(state.retry);
    if (state.catchingUp) {
      state.again = true;
      return;
    }
    state.catchingUp = true;
    try {
      do {
        state.again = false;
        await this.#catchUpOnce(chatId, state);
      } while (state.again && !state.stopped);
    } finally {
      state.catchingUp = false;
    }
  }

  async #catchUpOnce(chatId: string, state: ListenerState<T>): Promise<void> {
    state.buffer ??= [];
    for (let round = 0; round < MAX_CATCH_UP_ROUNDS; round++) {
      state.overflowed = false;
      try {
        const { events, complete } = await this.history(chatId, state.lastSeq);
        if (!complete) state.listener.gap(state.lastSeq);
        for (const event of events) this.#deliver(state, event);
      } catch {
        // Redis went away again (or the command connection is not back yet): live events
        // stay held and the catch-up is tried again, with backoff, while subscribed.
        state.failures++;
        clearTimeout(state.retry);
        state.retry = setTimeout(() => {
          if (!state.stopped && state.buffer) void this.#catchUp(chatId, state);
        }, this.#catchUpRetryMs(state.failures));
        return;
      }
      state.failures = 0;
      if (!state.overflowed) break;
      // The held events are in the history too (or reported as a gap): read it again.
      state.buffer = [];
    }
    const held = state.buffer ?? [];
    state.buffer = null;
    for (const event of held.sort((a, b) => a.seq - b.seq)) this.#deliver(state, event);
  }
}
