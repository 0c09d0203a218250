/**
 * What every relay WebSocket shares: the close codes (one name each), the one bounded send
 * that every frame the relay writes goes through, and the per-socket frame budget. A socket
 * whose peer stops reading holds at most `capBytes` in the relay before it is closed, and a
 * socket that floods or sends junk is closed instead of being answered without end.
 */

import { CLOSE_TRY_LATER } from "../close_codes.ts";

/** The close codes the relay sends (declared in `lib/close_codes.ts`, shared with worker and page). */
export {
  CLOSE_GOING_AWAY,
  CLOSE_INTERNAL,
  CLOSE_POLICY,
  CLOSE_TOO_BIG,
  CLOSE_TRY_LATER,
} from "../close_codes.ts";

/** The reason sent with a 1013 close for a socket that stopped reading. */
export const TOO_SLOW_REASON = "Too slow: reconnect to resume";

/**
 * Sends `data` unless the socket already holds more than `capBytes` unsent (a peer that
 * stopped reading); then closes it with 1013 and returns false. So a socket holds at most
 * the cap plus one frame. A socket that is no longer open is skipped (its close handler
 * cleans up).
 */
export function sendBounded(socket: WebSocket, data: string, capBytes: number): boolean {
  if (socket.readyState !== WebSocket.OPEN) return true;
  if (socket.bufferedAmount > capBytes) {
    closeQuietly(socket, CLOSE_TRY_LATER, TOO_SLOW_REASON);
    return false;
  }
  socket.send(data);
  return true;
}

/** Closes a socket, ignoring the error a socket that is already closing throws. */
export function closeQuietly(socket: WebSocket, code: number, reason: string): void {
  try {
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
      socket.close(code, reason.slice(0, 120));
    }
  } catch {
    // already closing
  }
}

/**
 * Whether a WebSocket message is larger than `maxBytes` (text as the UTF-8 it arrived in).
 * A text of at most `maxBytes / 3` UTF-16 units cannot be (one unit is at most 3 bytes of
 * UTF-8, a surrogate pair 4 for two units), so only longer texts are counted: counting every
 * chunk frame was 1-3 % of the relay's JavaScript on the worker socket (issue 18).
 */
export function frameTooLarge(data: unknown, maxBytes: number): boolean {
  if (typeof data === "string" && data.length * 3 <= maxBytes) return false;
  return frameSize(data) > maxBytes;
}

/** Size of a WebSocket message in bytes (text as the UTF-8 it arrived in). */
export function frameSize(data: unknown): number {
  if (typeof data === "string") return utf8Length(data);
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (data instanceof Blob) return data.size;
  return 0;
}

/** UTF-8 length of `text` without encoding it (a surrogate pair is 4 bytes). */
function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    bytes += unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 1 : 2;
  }
  return bytes;
}

/** Bad frames (unparsable or unknown) a socket may send before it is closed. */
export const MAX_BAD_FRAMES = 5;

/**
 * One socket's allowance of incoming frames: a token bucket of `perSecond` frames with a
 * burst of `burst`, and a count of bad frames. `take()` and `bad()` return the close reason
 * once the socket has used up its allowance, else null.
 */
export class FrameBudget {
  #tokens: number;
  #last: number;
  #bad = 0;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    readonly now: () => number = performance.now.bind(performance),
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** Spends one frame; the close reason when the socket sends faster than allowed. */
  take(): string | null {
    const now = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#last) * this.perSecond / 1000);
    this.#last = now;
    if (this.#tokens < 1) return "Too many frames";
    this.#tokens -= 1;
    return null;
  }

  /** Counts one bad frame; the close reason once there were `MAX_BAD_FRAMES`. */
  bad(): string | null {
    return ++this.#bad >= MAX_BAD_FRAMES ? "Too many bad frames" : null;
  }
}
