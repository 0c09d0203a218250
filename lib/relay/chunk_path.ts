/**
 * The way of a streamed chunk through the relay (docs/ARCHITECTURE.md, "The path of a
 * streamed chunk"): judged against its turn and lease, placed at its offset in the partial
 * answer, numbered, and sent to the chat's sockets, in the chat's lane.
 *
 * On several relays a chunk first tries one round trip to Redis: numbered after this relay's
 * last number for the chat and published only if that is still the chat's next number and no
 * relay holds the chat's lock (so this relay's copy of the answer is current); otherwise it
 * takes the lock and is numbered as every other event is. A worker streaming through one relay
 * takes the one round trip for every chunk (issue 14's bench: four fsynced writes before).
 *
 * A relay alone takes a chunk without a single promise when its chat's lane is idle and the
 * turn, the partial answer and a reserved sequence number are all in memory (`postNow()`):
 * the lane's promise chain, `TurnQueue.get()`, `nextSeq()` and `PartialAnswers.append()` cost
 * about ten promise hops per chunk (issue 18). Run at once on an idle lane, the chunk comes
 * after everything the lane ran and before everything queued later, as it would in the lane.
 */
import type { AgentChunkRequest, AssistantChunkEvent } from "../protocol.ts";
import type { ChatLanes } from "./chat_lanes.ts";
import type { ChatSeqs } from "./chat_seqs.ts";
import { RelayError, unknownTurn } from "./errors.ts";
import type { Fanout } from "./fanout.ts";
import type { PartialAnswers } from "./partial_answers.ts";
import type { ChatLock } from "./redis/redis_chat_lock.ts";
import type { TurnQueue, TurnRecord } from "./turn_queue.ts";

/** What the chunk path works with: the chat service's parts. */
export interface ChunkPathDeps {
  lanes: ChatLanes;
  /** The chats' cross-relay lock; null for a relay alone. */
  lock: ChatLock | null;
  queue: TurnQueue;
  partials: PartialAnswers;
  fanout: Fanout;
  seqs: ChatSeqs;
}

export class ChunkPath {
  readonly #deps: ChunkPathDeps;
  /** Delivery without waiting, for a relay alone; null on several relays (no `postNow()`). */
  readonly #chatNow: ((event: AssistantChunkEvent) => void) | null;

  constructor(deps: ChunkPathDeps) {
    this.#deps = deps;
    const { fanout, lock } = deps;
    this.#chatNow = lock || fanout.shared || !fanout.chatNow
      ? null
      : (event) => fanout.chatNow!(event);
  }

  /**
   * `post()` done before it returns, when it can be without waiting: a relay alone, nothing of
   * the chat queued or running in its lane, and the chunk's open turn, the partial answer and a
   * reserved number in memory. Undefined when it cannot (nothing was numbered, kept or sent:
   * call `post()`); throws what `post()` rejects with.
   */
  postNow(chatId: string, chunk: AgentChunkRequest): AssistantChunkEvent | null | undefined {
    const chatNow = this.#chatNow;
    const { lanes, queue, partials, seqs } = this.#deps;
    if (!chatNow || !lanes.idle(chatId)) return undefined;
    // A turn that is not open here is closed or unknown: only the store can say which.
    const turn = chunk.turnId ? queue.openTurn(chunk.turnId) : queue.currentTurn(chatId);
    if (chunk.turnId && !turn) return undefined;
    if (judge(chatId, chunk, turn) === "closed") return null;
    const event = partials.appendNow(chatId, turn?.id ?? null, chunk, () => seqs.nextNow(chatId));
    if (!event) return undefined;
    chatNow(event);
    return event;
  }

  /** Fans one streamed chunk out; a late chunk for a closed turn is ignored (null). */
  post(chatId: string, chunk: AgentChunkRequest): Promise<AssistantChunkEvent | null> {
    const { lanes, lock } = this.#deps;
    if (!lock) return lanes.run(chatId, () => this.#numbered(chatId, chunk));
    return lanes.run(chatId, async () => {
      const fast = await this.#next(chatId, chunk);
      if (fast !== undefined) return fast;
      const release = await lock.acquire(chatId);
      try {
        return await this.#numbered(chatId, chunk);
      } finally {
        await release();
      }
    }, { unlocked: true });
  }

  /** The chunk numbered, kept and sent; null for a closed turn. The caller is in the lane. */
  async #numbered(
    chatId: string,
    chunk: AgentChunkRequest,
  ): Promise<AssistantChunkEvent | null> {
    const { partials, fanout, seqs } = this.#deps;
    const turn = await this.#turnOf(chatId, chunk);
    if (turn === "closed") return null;
    const event = await partials.append(chatId, turn?.id ?? null, chunk, () => seqs.next(chatId));
    await fanout.chat(event);
    return event;
  }

  /**
   * Several relays: sends the chunk as the number after this relay's last one for the chat,
   * in one round trip, when that is still the chat's next number and no relay holds its lock;
   * undefined when it is not (nothing sent).
   */
  async #next(
    chatId: string,
    chunk: AgentChunkRequest,
  ): Promise<AssistantChunkEvent | null | undefined> {
    const { partials, fanout, seqs } = this.#deps;
    const last = seqs.last(chatId);
    // The original worker's chunks name no turn: judged under the lock on a fresh turn.
    if (last === undefined || !chunk.turnId) return undefined;
    const turn = await this.#turnOf(chatId, chunk);
    if (turn === "closed") return null;
    let prepared;
    try {
      prepared = await partials.prepare(chatId, turn?.id ?? null, chunk, last + 1);
    } catch (error) {
      // This relay's copy may be behind another relay's chunks: judge on a fresh copy.
      if (error instanceof RelayError && error.code === "chunk_gap") return undefined;
      throw error;
    }
    if (!(await fanout.publishNext(prepared.event))) return undefined;
    seqs.took(chatId, last + 1);
    prepared.keep();
    return prepared.event;
  }

  /** The open turn a chunk streams for (null: a legacy chunk with no turn), or "closed". */
  async #turnOf(chatId: string, chunk: AgentChunkRequest): Promise<TurnRecord | null | "closed"> {
    const { queue, lock } = this.#deps;
    if (lock && !chunk.turnId) {
      // Several relays: the original worker posts its last `done` right after its reply, and
      // nginx may send the two to different relays; this relay's copy of the turn may not know
      // yet that the reply closed it (a stray chunk after the reply).
      const current = queue.currentTurn(chatId);
      if (current) await queue.refresh(current.id);
    }
    const turn = chunk.turnId ? await queue.get(chunk.turnId) : queue.currentTurn(chatId);
    return judge(chatId, chunk, turn);
  }
}

/**
 * `turn` (what the chunk's `turnId` names, or the chat's current turn when it names none), or
 * "closed"; throws `unknown_turn` for a turn of no such id in this chat, `lease_lost` for a
 * lease the worker no longer holds.
 */
function judge(
  chatId: string,
  chunk: AgentChunkRequest,
  turn: TurnRecord | null,
): TurnRecord | null | "closed" {
  if (chunk.turnId && (!turn || turn.chatId !== chatId)) {
    throw unknownTurn(chunk.turnId);
  }
  if (turn && (turn.status !== "pending" && turn.status !== "leased")) return "closed";
  // The original worker posts its final empty `done` after its reply closed the turn: it ends
  // nothing (the reply did), so it is not sent as a turnless chunk that would open an empty
  // answer on our page; the original page still gets it (`ChatService.lateDone()`).
  if (!turn && !chunk.turnId && chunk.done && chunk.content === "") return "closed";
  if (turn && chunk.leaseId && turn.leaseId !== chunk.leaseId) {
    throw new RelayError("lease_lost", "This worker no longer holds the turn's lease");
  }
  return turn;
}
