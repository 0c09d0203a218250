/**
 * Whether Terra can answer now, read from `/api/health`, and the status chain in a visitor's
 * words. Operators speak of relay, worker, agent and LLM; a visitor sees "the chat server",
 * "Terra's computer" (the GPU box at home, which may be asleep), "the answer service" and
 * "the language model".
 */
import type { ChainLink, ComponentStatus, HealthResponse } from "../../lib/protocol.ts";

/** `online`: someone is there to answer; `away`: a question waits until Terra is back. */
export type Availability = "online" | "away" | "unknown";

/** Reads the health document; `unknown` while it could not be read. */
export function availabilityOf(health: HealthResponse | null): Availability {
  if (!health) return "unknown";
  const status = (name: ChainLink["name"]) =>
    health.chain.find((link) => link.name === name)?.status;
  if (!health.workerReady || status("worker") === "offline") return "away";
  if (status("agent") === "offline" || status("llm") === "offline") return "away";
  return "online";
}

/** The name a visitor reads for each link. */
export const LINK_NAMES: Record<ChainLink["name"], string> = {
  frontend: "This page",
  relay: "Chat server",
  worker: "Terra's computer",
  agent: "Answer service",
  llm: "Language model",
};

/** The state a visitor reads for each status. */
export const STATUS_WORDS: Record<ComponentStatus, string> = {
  online: "online",
  degraded: "slow",
  offline: "offline",
  unknown: "unknown",
};

/** Operator words that may appear in a component's own detail, and what a visitor reads. */
const OPERATOR_WORDS: [RegExp, string][] = [
  [/\bworkers?\b/gi, "Terra's computer"],
  [/\bagent(?: api)?\b/gi, "answer service"],
  [/\brelay\b/gi, "chat server"],
  [/\bLLM\b/g, "language model"],
];

/** One link's detail in a visitor's words. */
export function linkDetail(link: ChainLink): string {
  switch (link.name) {
    case "frontend":
      return "Loaded in your browser";
    case "relay":
      return link.status === "online" ? "Reachable" : link.detail || "Cannot be reached";
    case "worker":
      if (link.status === "online") return "Connected";
      if (/^Last seen/.test(link.detail)) return `Not connected (${link.detail.toLowerCase()})`;
      return "Not connected: the computer Terra runs on is off, asleep or restarting";
    default: {
      if (link.status === "unknown") return "Not checked yet";
      let detail = link.detail;
      for (const [word, visitorWord] of OPERATOR_WORDS) detail = detail.replace(word, visitorWord);
      return detail;
    }
  }
}

/** One line for the whole chain, as the header shows it. */
export function chainSummary(chain: readonly ChainLink[], name = "Terra"): {
  status: ComponentStatus;
  text: string;
} {
  const of = (link: ChainLink["name"]) => chain.find((l) => l.name === link)?.status ?? "unknown";
  if (of("relay") !== "online") return { status: "offline", text: "Chat server unreachable" };
  const parts = [of("worker"), of("agent"), of("llm")];
  if (parts.includes("offline")) return { status: "offline", text: `${name} is offline` };
  if (parts.includes("degraded")) return { status: "degraded", text: `${name} may be slow` };
  if (parts.includes("unknown")) return { status: "unknown", text: `Checking ${name}…` };
  return { status: "online", text: `${name} is online` };
}
