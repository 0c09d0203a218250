/**
 * The status chain frontend → relay → worker → agent → LLM, refreshed every 15 seconds:
 * a dot and one line in the header, and each link with its detail when opened.
 */
import type { ChainLink, ComponentStatus } from "../../lib/protocol.ts";
import type { RelayApi } from "./api.ts";

const REFRESH_MS = 15_000;

const NAMES: Record<ChainLink["name"], string> = {
  frontend: "Page",
  relay: "Relay",
  worker: "Worker",
  agent: "Agent",
  llm: "Model",
};

/** One line for the whole chain: the first link that is not online, or all well. */
export function chainSummary(chain: readonly ChainLink[]): {
  status: ComponentStatus;
  text: string;
} {
  const weak = chain.find((link) => link.status !== "online");
  if (!weak) return { status: "online", text: "All systems online" };
  return { status: weak.status, text: `${NAMES[weak.name]} ${weak.status}` };
}

export class StatusChain {
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly api: RelayApi,
    readonly dot: HTMLElement,
    readonly summary: HTMLElement,
    readonly list: HTMLOListElement,
  ) {}

  start(): void {
    this.refresh();
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.refresh();
    });
  }

  async refresh(): Promise<void> {
    clearTimeout(this.#timer);
    const startedAt = performance.now();
    let chain: ChainLink[];
    try {
      const health = await this.api.health();
      const latencyMs = Math.round(performance.now() - startedAt);
      // The page is running, whatever the relay believes about where it is served from.
      chain = health.chain.map((link): ChainLink =>
        link.name === "frontend"
          ? { ...link, status: "online", detail: "Loaded in your browser" }
          : link.name === "relay"
          ? { ...link, latencyMs }
          : link
      );
    } catch (error) {
      const now = new Date().toISOString();
      const detail = error instanceof Error ? error.message : String(error);
      chain = (["frontend", "relay", "worker", "agent", "llm"] as const).map((name) => ({
        name,
        status: name === "frontend" ? "online" : name === "relay" ? "offline" : "unknown",
        detail: name === "frontend" ? "Loaded in your browser" : name === "relay" ? detail : "",
        checkedAt: now,
        latencyMs: null,
      }));
    }
    this.#draw(chain);
    // Two refreshes may overlap (a tab shown mid-poll): only one timer may survive.
    clearTimeout(this.#timer);
    if (document.visibilityState !== "hidden") {
      this.#timer = setTimeout(() => this.refresh(), REFRESH_MS);
    }
  }

  #draw(chain: ChainLink[]): void {
    const { status, text } = chainSummary(chain);
    this.dot.dataset.status = status;
    this.summary.textContent = text;
    this.list.replaceChildren(...chain.map((link) => {
      const item = document.createElement("li");
      item.dataset.status = link.status;
      const name = document.createElement("strong");
      name.textContent = NAMES[link.name];
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = link.status;
      const detail = document.createElement("span");
      detail.className = "detail";
      const parts = [link.detail];
      if (link.latencyMs !== null) parts.push(`${link.latencyMs} ms`);
      if (link.checkedAt) {
        parts.push(`checked ${new Date(link.checkedAt).toLocaleTimeString()}`);
      }
      detail.textContent = parts.filter(Boolean).join(" · ");
      item.append(name, state, detail);
      return item;
    }));
  }
}
