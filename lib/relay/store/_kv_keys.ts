/** Deno KV key builders, private to `kv_store.ts`: the only place key layouts are written. */

/** `{id, createdAt, lastActivityAt, clientIp, userAgent}` of a chat. */
export const chatKey = (chatId: string) => ["chats", chatId] as const;
export const chatsPrefix = () => ["chats"] as const;
/** A chat's messages, ordered by their sequence number. */
export const messageKey = (chatId: string, seq: number) => ["messages", chatId, seq] as const;
export const messagesPrefix = (chatId: string) => ["messages", chatId] as const;
/** The highest sequence number a chat may have handed out (hi/lo allocation). */
export const seqCeilingKey = (chatId: string) => ["seq_ceiling", chatId] as const;
/** The chat's latest `workerState` event. */
export const workerStateKey = (chatId: string) => ["worker_state", chatId] as const;
/** The answer being streamed (throttled write-through, for resume after a restart). */
export const partialKey = (chatId: string) => ["partial", chatId] as const;
/** A turn record, keyed by the visitor message it answers. */
export const turnKey = (turnId: string) => ["turns", turnId] as const;
/** Index of turns not yet answered, in arrival order: the work queue. */
export const openTurnKey = (createdAtMs: number, turnId: string) =>
  ["open_turns", createdAtMs, turnId] as const;
export const openTurnsPrefix = () => ["open_turns"] as const;
/** A worker's last heartbeat and component report. */
export const workerKey = (workerId: string) => ["workers", workerId] as const;
export const workersPrefix = () => ["workers"] as const;
/** The operator's site words (`SiteProfile`), published by a worker. */
export const siteProfileKey = () => ["site_profile"] as const;
