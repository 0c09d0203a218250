/**
 * The one line above the conversation that says what is going on, in plain words: a
 * failure to read, a lost connection, the place in the queue, Terra working, or an error
 * from the model side. Nothing when all is quiet.
 */
import type { WorkerStateEvent } from "../../lib/protocol.ts";
import type { Connection } from "./chat_socket.ts";

export interface Notice {
  text: string;
  tone: "info" | "warn" | "error";
}

export function noticeFor(
  workerState: WorkerStateEvent | null,
  connection: { state: Connection; detail: string },
  problem: string | null,
): Notice | null {
  if (problem) return { text: problem, tone: "error" };
  if (connection.state === "retrying") {
    return { text: connection.detail || "Reconnecting…", tone: "warn" };
  }
  if (connection.state === "connecting") return { text: "Connecting…", tone: "info" };
  switch (workerState?.state) {
    case "queued":
      return { text: `Waiting for Terra: ${workerState.detail || "in line"}`, tone: "info" };
    case "processing":
      return { text: workerState.detail || "Terra is writing…", tone: "info" };
    case "error":
      return {
        text: workerState.detail || "Terra could not answer. Try again in a moment.",
        tone: "error",
      };
    default:
      return null;
  }
}
