/**
 * The `ChatStore` engine on Redis, for several relays sharing one store (issue 14). Each
 * chat's keys share its hash tag (`{chatId}`, `_redis_keys.ts`), and every write the contract
 * makes atomic is one Lua script over that chat's keys (`_redis_scripts.ts`). Sequence numbers
 * are one `INCR` per chat: monotonic across relays and restarts as long as Redis keeps its
 * data (`appendonly yes`; with `appendfsync always` an acknowledged write survives a SIGKILL).
 *
 * A few keys are global (the open-turn index, the chat list, turn → chat, workers), in other
 * Cluster slots, so they cannot join a chat's script. They are written in an order that is
 * safe when a relay dies between the two steps: an index entry is added *before* the turn it
 * points to is opened and removed *after* it is closed, and the turn record is the truth
 * (`listOpenTurns()` reads each turn and keeps only the open ones). The worst a crash leaves is
 * a stale index entry, which the next `listOpenTurns()` clears.
 *
 * Every failure of Redis comes out as `StoreUnavailableError` (503 `store_unavailable`).
 */
import type { ChatMessage, SiteProfile, WorkerStateEvent } from "../../protocol.ts";
import type { RedisConnection } from "../redis/redis_connection.ts";
import {
  chatKeys,
  clientTurnKeys,
  globalKeys,
  turnChatKey,
  turnKey,
  workerKey,
} from "./_redis_keys.ts";
import {
  DELETE_CHAT,
  PUT_VISITOR_MESSAGE,
  REMOVE_OPEN_TURN,
  SET_PARTIAL,
  WRITE_CHAT,
} from "./_redis_scripts.ts";
import {
  type ChatRecord,
  type ChatStore,
  type ChatWrites,
  fitsStoredValue,
  type PartialAnswer,
  type TurnRecord,
  type VersionedTurn,
  type WorkerRecord,
} from "./chat_store.ts";

/** How the Redis engine names its keys. */
export interface RedisStoreOptions {
  /** Put before every key, so one Redis can hold several deployments. @default "terrarium:" */
  prefix?: string;
}

/** The key of a chat's sequence counter (`nextSeq()`), for `RedisFanout.publishNext()`. */
export function redisSeqKey(prefix: string, chatId: string): string {
  return chatKeys(prefix, chatId).seq;
}

/** Opens the Redis engine over a connection; the store owns it from here (and closes it). */
export function redisStore(
  connection: RedisConnection,
  options: RedisStoreOptions = {},
): ChatStore {
  return new RedisStore(connection, options.prefix ?? "terrarium:");
}

/** Turns with these states are in the work queue. */
const OPEN = new Set(["pending", "leased"]);

class RedisStore implements ChatStore {
  readonly shared = true;
  readonly #redis: RedisConnection;
  readonly #prefix: string;
  readonly #global: ReturnType<typeof globalKeys>;

  constructor(connection: RedisConnection, prefix: string) {
    this.#redis = connection;
    this.#prefix = prefix;
    this.#global = globalKeys(prefix);
  }

  async nextSeq(chatId: string): Promise<number> {
    return Number(await this.#redis.command(["INCR", chatKeys(this.#prefix, chatId).seq]));
  }

  async getChat(chatId: string): Promise<ChatRecord | null> {
    return await this.#getJson<ChatRecord>(chatKeys(this.#prefix, chatId).record);
  }

  async *listChats(): AsyncGenerator<ChatRecord> {
    let cursor = "0";
    do {
      const [next, ids] = await this.#redis.command<[string, string[]]>(
        ["SSCAN", this.#global.chats, cursor, "COUNT", "200"],
      );
      cursor = next;
      for (const id of ids) {
        const record = await this.getChat(id);
        if (record) yield record;
      }
    } while (cursor !== "0");
  }

  async listMessages(chatId: string, afterSeq = 0, limit = 10_000): Promise<ChatMessage[]> {
    if (limit <= 0) return [];
    const members = await this.#redis.command<string[]>([
      "ZRANGE",
      chatKeys(this.#prefix, chatId).messages,
      `(${afterSeq}`,
      "+inf",
      "BYSCORE",
      "LIMIT",
      "0",
      String(limit),
    ]);
    return members.map((member) => JSON.parse(member) as ChatMessage);
  }

  async getMessage(chatId: string, seq: number): Promise<ChatMessage | null> {
    const [member] = await this.#redis.command<string[]>(
      ["ZRANGE", chatKeys(this.#prefix, chatId).messages, String(seq), String(seq), "BYSCORE"],
    );
    return member === undefined ? null : JSON.parse(member) as ChatMessage;
  }

  async writeChat(writes: ChatWrites): Promise<boolean> {
    const chatId = writesChat(writes, undefined);
    if (chatId === undefined) return true;
    await this.#writeScript(chatId, null, null, writes);
    return true;
  }

  async deleteChat(chatId: string): Promise<void> {
    const keys = chatKeys(this.#prefix, chatId);
    const turnIds = await this.#redis.command<string[]>(["SMEMBERS", keys.turns]);
    await this.#redis.eval(DELETE_CHAT, [
      keys.record,
      keys.messages,
      keys.seq,
      keys.workerState,
      keys.partial,
      keys.turns,
      ...turnIds.map((id) => turnKey(this.#prefix, chatId, id)),
    ], turnIds);
    // The global entries go after the chat's own keys: a crash in between leaves entries
    // that point at nothing, which every reader skips.
    for (const id of turnIds) {
      await this.#redis.command(["DEL", turnChatKey(this.#prefix, id)]);
      await this.#redis.command(["ZREM", this.#global.openTurns, id]);
    }
    await this.#redis.command(["SREM", this.#global.chats, chatId]);
  }

  async getWorkerState(chatId: string): Promise<WorkerStateEvent | null> {
    return await this.#getJson<WorkerStateEvent>(chatKeys(this.#prefix, chatId).workerState);
  }

  async setWorkerState(event: WorkerStateEvent): Promise<void> {
    await this.#redis.command([
      "SET",
      chatKeys(this.#prefix, event.chatId).workerState,
      JSON.stringify(event),
    ]);
  }

  async getPartial(chatId: string): Promise<PartialAnswer | null> {
    return await this.#getJson<PartialAnswer>(chatKeys(this.#prefix, chatId).partial);
  }

  async setPartials(entries: { chatId: string; partial: PartialAnswer }[]): Promise<boolean[]> {
    // One script per chat (each in its chat's slot), sent together: the client pipelines them.
    return await Promise.all(entries.map(async ({ chatId, partial }) => {
      if (!fitsStoredValue(partial)) return false;
      await this.#redis.eval(SET_PARTIAL, [chatKeys(this.#prefix, chatId).partial], [
        String(partial.seq),
        JSON.stringify(partial),
      ]);
      return true;
    }));
  }

  async deletePartial(chatId: string): Promise<void> {
    await this.#redis.command(["DEL", chatKeys(this.#prefix, chatId).partial]);
  }

  async getSiteProfile(): Promise<SiteProfile | null> {
    return await this.#getJson<SiteProfile>(this.#global.siteProfile);
  }

  async setSiteProfile(profile: SiteProfile): Promise<void> {
    await this.#redis.command(["SET", this.#global.siteProfile, JSON.stringify(profile)]);
  }

  async listWorkers(): Promise<WorkerRecord[]> {
    const now = Date.now();
    await this.#redis.command(["ZREMRANGEBYSCORE", this.#global.workers, "-inf", String(now)]);
    const ids = await this.#redis.command<string[]>(["ZRANGE", this.#global.workers, "0", "-1"]);
    const records = await Promise.all(
      ids.map((id) => this.#getJson<WorkerRecord>(workerKey(this.#prefix, id))),
    );
    return records.filter((record): record is WorkerRecord => record !== null);
  }

  async putWorker(record: WorkerRecord, expireInMs: number): Promise<void> {
    const expireAt = Date.now() + expireInMs;
    await this.#redis.command([
      "SET",
      workerKey(this.#prefix, record.workerId),
      JSON.stringify(record),
      "PX",
      String(Math.max(1, Math.ceil(expireInMs))),
    ]);
    await this.#redis.command(["ZADD", this.#global.workers, String(expireAt), record.workerId]);
  }

  async listOpenTurns(): Promise<VersionedTurn[]> {
    const ids = await this.#redis.command<string[]>(
      ["ZRANGE", this.#global.openTurns, "0", "-1"],
    );
    const found = await Promise.all(ids.map((id) => this.getTurn(id)));
    const open: VersionedTurn[] = [];
    const seen = new Set<string>();
    for (const [i, entry] of found.entries()) {
      if (!entry) continue; // being stored right now, or deleted: not ours to prune
      if (OPEN.has(entry.turn.status)) {
        if (!seen.has(entry.turn.id)) open.push(entry);
        seen.add(entry.turn.id);
      } else {
        // A closed turn left in the index by a relay that died after closing it.
        if (ids[i] === entry.turn.id) await this.#unindex(entry.turn);
      }
    }
    // The turn's own arrival time is the truth (the index score may predate a retry).
    return open.sort((a, b) =>
      a.turn.createdAtMs - b.turn.createdAtMs || (a.turn.id < b.turn.id ? -1 : 1)
    );
  }

  async getTurn(turnId: string): Promise<VersionedTurn | null> {
    const chatId = await this.#redis.command<string | null>(
      ["GET", turnChatKey(this.#prefix, turnId)],
    );
    if (chatId === null) return null;
    const [json, version] = await this.#redis.command<(string | null)[]>(
      ["HMGET", turnKey(this.#prefix, chatId, turnId), "json", "v"],
    );
    if (json == null || version == null) return null;
    return { turn: JSON.parse(json) as TurnRecord, version };
  }

  async putVisitorMessage(
    chat: ChatRecord,
    message: ChatMessage,
    turn: TurnRecord,
  ): Promise<string | null> {
    if (chat.id !== turn.chatId || message.chatId !== turn.chatId) {
      throw new TypeError(`Cannot store turn "${turn.id}": its chat, message and turn differ`);
    }
    // The turn → chat entry first (NX): a turn id already taken by another chat is a duplicate
    // too, as it is for the KV engine whose turn keys are global.
    const indexed = await this.#redis.command<string | null>(
      ["SET", turnChatKey(this.#prefix, turn.id), turn.chatId, "NX", "GET"],
    );
    if (indexed !== null && indexed !== turn.chatId) return null;
    await this.#redis.command(["SADD", this.#global.chats, chat.id]);
    // Indexed before it exists: a crash here leaves an entry readers skip, never a turn that
    // is open but missing from the queue.
    await this.#index(turn, "NX");
    const keys = chatKeys(this.#prefix, turn.chatId);
    const version = await this.#redis.eval<number | null>(PUT_VISITOR_MESSAGE, [
      turnKey(this.#prefix, turn.chatId, turn.id),
      keys.messages,
      keys.record,
      keys.turns,
    ], [
      JSON.stringify(turn),
      String(message.seq),
      JSON.stringify(message),
      JSON.stringify(chat),
      turn.id,
    ]);
    return version === null ? null : String(version);
  }

  async updateTurn(next: TurnRecord, version: string): Promise<string | null> {
    return await this.#writeScript(next.chatId, next, version, {});
  }

  async closeTurn(next: TurnRecord, version: string, writes: ChatWrites): Promise<string | null> {
    const written = await this.#writeScript(
      writesChat(writes, next.chatId)!,
      next,
      version,
      writes,
    );
    if (written === null) return null;
    // After the close: a crash before this line leaves a closed turn in the index, skipped and
    // cleared by the next `listOpenTurns()`.
    await this.#unindex(next);
    return written;
  }

  async reopenTurn(next: TurnRecord, version: string, writes: ChatWrites): Promise<string | null> {
    const chatId = writesChat(writes, next.chatId)!;
    // Indexed (with its new arrival time) before it is open again; a stale version leaves an
    // entry for a closed turn, which readers skip.
    await this.#index(next);
    return await this.#writeScript(chatId, next, version, writes);
  }

  async close(): Promise<void> {
    await this.#redis.close();
  }

  /** Runs `WRITE_CHAT` for one chat: the writes, and the turn if a version is given. */
  async #writeScript(
    chatId: string,
    turn: TurnRecord | null,
    version: string | null,
    writes: ChatWrites,
  ): Promise<string | null> {
    const keys = chatKeys(this.#prefix, chatId);
    const args = [
      version ?? "",
      turn ? JSON.stringify(turn) : "",
      writes.deletePartialOf === undefined ? "0" : "1",
    ];
    for (const message of writes.messages ?? []) {
      args.push(String(message.seq), JSON.stringify(message));
    }
    const result = await this.#redis.eval<number | null>(WRITE_CHAT, [
      turn ? turnKey(this.#prefix, chatId, turn.id) : keys.record,
      keys.messages,
      keys.partial,
    ], args);
    return result === null ? null : String(result);
  }

  /** Adds an open turn to the queue and to its client's open turns (before it opens). */
  async #index(turn: TurnRecord, mode?: "NX"): Promise<void> {
    const score = String(turn.createdAtMs);
    const flags = mode ? [mode] : [];
    await this.#redis.command(["ZADD", this.#global.openTurns, ...flags, score, turn.id]);
    if (turn.clientKey !== undefined) {
      await this.#redis.command([
        "ZADD",
        clientTurnKeys(this.#prefix, turn.clientKey).openTurns,
        ...flags,
        score,
        turn.id,
      ]);
    }
  }

  /** Takes a closed turn out of the queue and its client's open turns (after it closed). */
  async #unindex(turn: TurnRecord): Promise<void> {
    const args = [turn.id, String(turn.createdAtMs)];
    await this.#redis.eval(REMOVE_OPEN_TURN, [this.#global.openTurns], args);
    if (turn.clientKey !== undefined) {
      await this.#redis.eval(REMOVE_OPEN_TURN, [
        clientTurnKeys(this.#prefix, turn.clientKey).openTurns,
      ], args);
    }
  }

  async #getJson<T>(key: string): Promise<T | null> {
    const value = await this.#redis.command<string | null>(["GET", key]);
    return value === null ? null : JSON.parse(value) as T;
  }
}

/**
 * The one chat `writes` (and the turn of `chatId`, if given) change. One script may change one
 * chat only (one hash tag); the relay never writes two chats together, and a caller that tries
 * gets a TypeError rather than a write that is atomic on one engine and not the other.
 */
function writesChat(writes: ChatWrites, chatId: string | undefined): string | undefined {
  const chats = new Set<string>();
  if (chatId !== undefined) chats.add(chatId);
  for (const message of writes.messages ?? []) chats.add(message.chatId);
  if (writes.deletePartialOf !== undefined) chats.add(writes.deletePartialOf);
  if (chats.size > 1) {
    throw new TypeError(`Cannot write several chats in one transaction: ${[...chats].join(", ")}`);
  }
  return chats.values().next().value;
}
