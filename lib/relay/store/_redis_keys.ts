/**
 * Redis key builders, private to `redis_store.ts`. Every key of one chat carries the chat id
 * as its hash tag (`{chatId}`), so a chat's keys share one Redis Cluster slot and one Lua
 * script may change them together. The few global keys (the open-turn index, the chat list,
 * the turn → chat index, workers) live in other slots and are written in an order that is
 * safe on its own (see `redis_store.ts`).
 */

/** The keys of one chat, under `prefix`. */
export function chatKeys(prefix: string, chatId: string) {
  const base = `${prefix}chat:{${chatId}}:`;
  return {
    /** JSON `ChatRecord`. */
    record: `${base}record`,
    /** Sorted set: score = message seq, member = the message's JSON. */
    messages: `${base}messages`,
    /** The per-chat sequence counter (INCR). */
    seq: `${base}seq`,
    /** JSON of the latest `workerState` event. */
    workerState: `${base}worker_state`,
    /** JSON `PartialAnswer`. */
    partial: `${base}partial`,
    /** Set of the chat's turn ids (for retention). */
    turns: `${base}turns`,
  };
}

/** A turn: a hash with `json` (the `TurnRecord`) and `v` (its version, a counter). */
export function turnKey(prefix: string, chatId: string, turnId: string): string {
  return `${prefix}chat:{${chatId}}:turn:${turnId}`;
}

/** Which chat a turn belongs to (a turn is looked up by its id alone). */
export function turnChatKey(prefix: string, turnId: string): string {
  return `${prefix}turn_chat:{${turnId}}`;
}

/** The global keys. */
export function globalKeys(prefix: string) {
  return {
    /**
     * Sorted set of open turn ids, score = `createdAtMs` (ties by id): the work queue. Tagged
     * `{queue}` with the queue-wide reservations of the open-turn caps (one slot).
     */
    openTurns: `${prefix}{queue}:open_turns`,
    /** Sorted set of queue-wide open-turn reservations, score = when each lapses (ms). */
    openReservations: `${prefix}{queue}:reservations`,
    /** Set of every chat id with a record. */
    chats: `${prefix}chats`,
    /** Sorted set of worker ids, score = when the record expires (ms). */
    workers: `${prefix}workers`,
    /** JSON `SiteProfile`. */
    siteProfile: `${prefix}site_profile`,
  };
}

/**
 * The open turns of one client key (sorted set of turn ids, like the queue) and its open-turn
 * reservations, under the client key's hash tag (one slot, so the cap is one script).
 */
export function clientTurnKeys(prefix: string, clientKey: string) {
  return {
    openTurns: `${prefix}client:{${clientKey}}:open_turns`,
    reservations: `${prefix}client:{${clientKey}}:reservations`,
  };
}

/** A worker record (expires on its own, `PX`). */
export function workerKey(prefix: string, workerId: string): string {
  return `${prefix}worker:{${workerId}}`;
}
