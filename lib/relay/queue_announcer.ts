/**
 * Queue positions told to waiting chats (SPEC §3 queue position): after anything that moves
 * the queue, each waiting chat whose place changed hears it once, as a `queued` state. Rounds
 * run one at a time, so two rounds never interleave their announcements.
 */
import type { Logger } from "../log.ts";

/** Plain words for a queue position. */
export function queueDetail(position: number): string {
  if (position === 0) return "You're next in line";
  return position === 1 ? "1 chat ahead of you" : `${position} chats ahead of you`;
}

/** Where the announcer reads the queue and how it tells a chat its place. */
export interface QueueAnnouncerDeps {
  /** Waiting chats and the number of waiting chats ahead of each (`TurnQueue.positions()`). */
  positions(): Map<string, number>;
  /** Tells `chatId` its place (sets and broadcasts its `queued` state). */
  announce(chatId: string, position: number): Promise<unknown>;
  log: Logger;
}

export class QueueAnnouncer {
  #deps: QueueAnnouncerDeps;
  /** Queue position last announced per waiting chat. */
  #announced = new Map<string, number>();
  #round: Promise<void> = Promise.resolve();

  constructor(deps: QueueAnnouncerDeps) {
    this.#deps = deps;
  }

  /** Announces changed positions after the rounds already queued; never rejects. */
  announce(): Promise<void> {
    this.#round = this.#round.then(async () => {
      const positions = this.#deps.positions();
      for (const chatId of this.#announced.keys()) {
        if (!positions.has(chatId)) this.#announced.delete(chatId);
      }
      for (const [chatId, position] of positions) {
        if (this.#announced.get(chatId) === position) continue;
        this.#announced.set(chatId, position);
        await this.#deps.announce(chatId, position);
      }
    }).catch((error) => this.#deps.log.error("queue announcement failed", { error }));
    return this.#round;
  }

  /**
   * Forgets what `chatId` was told: it left the queue (claimed) or waits again (requeued),
   * so its next place is announced even when the number is the same.
   */
  forget(chatId: string): void {
    this.#announced.delete(chatId);
  }
}
