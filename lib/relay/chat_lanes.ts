/**
 * Per-chat lanes: tasks of one chat run one after another, in the order they were queued;
 * tasks of different chats run freely. Everything that numbers and emits a chat's events
 * runs in its lane, so sequence numbers reach sockets in order.
 */
export class ChatLanes {
  #tails = new Map<string, Promise<unknown>>();

  /** Runs `task` after every task queued before it for `chatId`. */
  run<T>(chatId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(chatId) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.then(() => {}, () => {});
    this.#tails.set(chatId, tail);
    tail.then(() => {
      if (this.#tails.get(chatId) === tail) this.#tails.delete(chatId);
    });
    return result;
  }

  /** Resolves when every task queued so far has finished. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#tails.values()]);
  }
}
