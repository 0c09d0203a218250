/**
 * The worker socket's `chunk` event checked by hand: the frame a streaming worker sends most,
 * so its check is on every token's path. zod took about 0.35-0.5 µs of the chunk's 2.4 µs of
 * JavaScript, this about 0.05-0.2 (issue 18). `chunk_frame_test.ts` proves by property tests
 * that it accepts exactly the chunk events `WorkerClientEvent` accepts, with the same result;
 * anything it does not take is left to the schema, which judges (and words) it as before.
 */
import { CHAT_ID_PATTERN, ID_PATTERN, type WorkerClientEvent } from "../protocol.ts";

/** A `chunk` event as `WorkerClientEvent.parse()` returns it. */
export type ChunkFrame = Extract<WorkerClientEvent, { type: "chunk" }>;

/**
 * `json` (a parsed frame) as the chunk event `WorkerClientEvent.parse()` makes of it, or null
 * when it is not a valid chunk event (let the schema judge it).
 */
export function chunkFrame(json: unknown): ChunkFrame | null {
  if (typeof json !== "object" || json === null) return null;
  const { type, chatId, content, done, kind, offset, turnId, leaseId } = json as Record<
    string,
    unknown
  >;
  if (type !== "chunk" || typeof content !== "string") return null;
  if (typeof chatId !== "string" || !CHAT_ID_PATTERN.test(chatId)) return null;
  if (done !== undefined && typeof done !== "boolean") return null;
  if (kind !== undefined && kind !== "answer" && kind !== "reasoning" && kind !== "tool") {
    return null;
  }
  // zod's `.int()` takes safe integers only.
  if (offset !== undefined && !(Number.isSafeInteger(offset) && (offset as number) >= 0)) {
    return null;
  }
  if (turnId !== undefined && !isId(turnId)) return null;
  if (leaseId !== undefined && !isId(leaseId)) return null;
  // Keys zod does not know are dropped, and an optional field left out stays out.
  const event: ChunkFrame = { content, done: done ?? false, kind: kind ?? "answer", type, chatId };
  if (offset !== undefined) event.offset = offset as number;
  if (turnId !== undefined) event.turnId = turnId as string;
  if (leaseId !== undefined) event.leaseId = leaseId as string;
  return event;
}

function isId(value: unknown): boolean {
  return typeof value === "string" && ID_PATTERN.test(value);
}
