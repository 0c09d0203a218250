/**
 * How a failed turn is told (issue 16): a stable code for the operator and one whole
 * sentence for the visitor. The sentence goes to the relay as the turn's failure, never as
 * Terra's words; older relays stored it as a reply, so the history leaves those out.
 */
import { AgentError } from "./agent_error.ts";

const MODEL_WORDS: Partial<Record<AgentError["kind"], string>> = {
  unavailable:
    "Terra's language model is not reachable right now. Please try again in a few minutes.",
  rate_limited: "Terra's language model is busy. Please try again in a minute.",
  timeout: "Terra's language model took too long to answer. Please try again.",
  stream_cut: "The connection to Terra's language model broke off mid-answer. Please try again.",
  circuit_open:
    "Terra's language model keeps failing, so Terra is pausing for a moment. Please try again shortly.",
  bad_response: "Terra's language model sent an answer Terra could not read. Please try again.",
};
const DEADLINE_WORDS =
  "Terra spent too long on this question and stopped. Please try again, or ask something narrower.";
const GENERIC_WORDS = "Something went wrong while Terra was answering. Please try again.";

/** Every sentence `failureWords()` can say (to recognise ones stored as replies). */
export const FAILURE_SENTENCES: ReadonlySet<string> = new Set([
  ...Object.values(MODEL_WORDS),
  DEADLINE_WORDS,
  GENERIC_WORDS,
]);

/** The `code` a thrown error carries (a typed error of the tool loop), if a sane one. */
function ownCode(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[a-z][a-z0-9_]{0,79}$/.test(code) ? code : null;
}

/** Plain words for a failure, shown to the visitor. */
export function failureWords(error: unknown): string {
  if (error instanceof AgentError) return MODEL_WORDS[error.kind] ?? GENERIC_WORDS;
  if (ownCode(error) === "turn_deadline") return DEADLINE_WORDS;
  return GENERIC_WORDS;
}

/** The code a failure is recorded with: `model_<kind>`, the error's own code, or `internal`. */
export function failureCode(error: unknown): string {
  if (error instanceof AgentError) return `model_${error.kind}`;
  return ownCode(error) ?? "internal";
}
