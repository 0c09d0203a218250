/**
 * Per-chat lanes: tasks of one chat run one after another, in the order they were queued;
 * tasks of different chats run freely. Everything that numbers and emits a chat's events
 * runs in its lane, so sequence numbers reach sockets in order. On several relays a lane
 * also holds the chat's cross-relay lock (`redis/redis_chat_lock.ts`) while a task runs.
 */
import type { ChatLock } from "./redis/redis_chat_lock.ts";

export class ChatLanes {
  #tails = new Map<string, Promise<unknown>>();
  #lock: ChatLock | null;

  /** `lock`: held around every task when relays share the store (null: this relay alone). */
  constructor(lock: ChatLock | null = null) {
    this.#lock = lock;
  }

  /**
   * Runs `task` after every task queued before it for `chatId`; `unlocked`: without the
   * cross-relay lock (the task takes it itself if it needs it).
   */
  run<T>(chatId: string, task: () => Promise<T>, options: { unlocked?: boolean } = {}): Promise<T> {
    const previous = this.#tails.get(chatId) ?? Promise.resolve();
    const lock = options.unlocked ? null : this.#lock;
    let release: (() => Promise<void>) | null = null;
    const result = lock
      ? previous.then(async () => {
        release = await lock.acquire(chatId);
        return await task();
      })
      : previous.then(task);
    // The caller has its answer before the lock goes back; the next task waits for both.
    const settled = result.then(() => {}, () => {});
    const tail = lock ? settled.then(() => release?.()).catch(() => {}) : settled;
    this.#tails.set(chatId, tail);
    tail.then(() => {
      if (this.#tails.get(chatId) === tail) this.#tails.delete(chatId);
    });
    return result;
  }

  /**
   * Whether nothing of `chatId` is queued or running: a task run now, synchronously, comes
   * after everything the lane ever ran and before everything queued later (`ChunkPath`'s
   * path without promises). A finished lane is idle a few microtasks after its last task.
   */
  idle(chatId: string): boolean {
    return !this.#tails.has(chatId);
  }

  /** Resolves when every task queued so far has finished. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#tails.values()]);
  }
}
