/**
 * The one line under the conversation that says what is going on, in plain words: a
 * failure to read (with a countdown when the relay said how long to wait), a lost
 * connection, Terra being away, the place in the queue, Terra working. Nothing when all is
 * quiet. A failed turn is not a notice: it is a row under its question, with Retry.
 */
import type { WorkerStateEvent } from "../../lib/protocol.ts";
import type { Availability } from "./availability.ts";
import type { Connection } from "./chat_socket.ts";

export interface Notice {
  text: string;
  tone: "info" | "warn" | "error";
  /** Seconds left before trying again makes sense; shown as a countdown after `text`. */
  countdown?: number;
}

/** A failure the visitor should read until the next thing happens. */
export interface Problem {
  text: string;
  /** When the relay asked to wait (`Retry-After`), the time the wait ends (ms epoch). */
  until?: number;
}

/** What the notice is made from. */
export interface NoticeInputs {
  workerState: WorkerStateEvent | null;
  connection: { state: Connection; detail: string };
  problem: Problem | null;
  availability: Availability;
  name: string;
  offlineText: string;
  nowMs?: number;
}

/** `text` as a whole sentence: relay errors do not always end with a full stop. */
export function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return trimmed;
  const capital = trimmed[0]!.toUpperCase() + trimmed.slice(1);
  return /[.!?…)]$/.test(capital) ? capital : `${capital}.`;
}

/** A relay sentence that will be followed by a countdown: its own vaguer "try again later" goes. */
export function beforeCountdown(text: string): string {
  const trimmed = text.trim().replace(
    /[;,.]?\s*(?:please\s+)?try again (?:later|soon|in a (?:moment|while|few \w+))[.!]?$/i,
    "",
  );
  return sentence(trimmed || text);
}

/** The countdown's words: "Try again in 5 s." (or "You can try again now."). */
export function countdownText(seconds: number): string {
  return seconds > 0 ? `Try again in ${seconds} s.` : "You can try again now.";
}

export function noticeFor(inputs: NoticeInputs): Notice | null {
  const { workerState, connection, problem, availability, name } = inputs;
  if (problem) {
    if (problem.until === undefined) return { text: sentence(problem.text), tone: "error" };
    const left = Math.max(0, Math.ceil((problem.until - (inputs.nowMs ?? Date.now())) / 1000));
    return { text: beforeCountdown(problem.text), tone: "error", countdown: left };
  }
  if (connection.state === "retrying") {
    return { text: connection.detail || "Reconnecting…", tone: "warn" };
  }
  if (connection.state === "connecting") return { text: "Connecting…", tone: "info" };
  switch (workerState?.state) {
    case "queued":
      // The relay's "You're next in line" is true only if someone is there to answer.
      if (availability === "away") {
        return {
          text: `Your question is waiting for ${name} to come online. ` +
            `It will be answered when ${name} is back.`,
          tone: "warn",
        };
      }
      return { text: `Waiting for ${name}: ${workerState.detail || "in line"}`, tone: "info" };
    case "processing":
      return { text: workerState.detail || `${name} is writing…`, tone: "info" };
    case "error":
      // A turn's failure is shown as its row; only a failure without a turn is a notice.
      if (workerState.turnId) break;
      return {
        text: sentence(workerState.detail || `${name} could not answer. Try again in a moment`),
        tone: "error",
      };
  }
  if (availability === "away") return { text: inputs.offlineText, tone: "warn" };
  return null;
}
