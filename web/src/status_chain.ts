/**
 * The status chain page → chat server → Terra's computer → answer service → model,
 * refreshed every 15 seconds and at once when a turn fails: a dot and one line in the
 * header, and each link with its detail in a popover that Esc and an outside click close.
 */
import type { ChainLink, HealthResponse } from "../../lib/protocol.ts";
import type { RelayApi } from "./api.ts";
import { chainSummary, LINK_NAMES, linkDetail, STATUS_WORDS } from "./availability.ts";

const REFRESH_MS = 15_000;

export class StatusChain {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #chain: ChainLink[] = [];
  /** Terra's name as the operator set it. */
  name = "Terra";

  constructor(
    readonly api: RelayApi,
    readonly root: HTMLDetailsElement,
    readonly dot: HTMLElement,
    readonly summary: HTMLElement,
    readonly list: HTMLOListElement,
    /** Told every health document read (null: the relay could not be reached). */
    readonly onHealth: (health: HealthResponse | null) => void = () => {},
  ) {
    // A popover closes the way people expect one to: Esc (focus back on its button) or a
    // click anywhere else.
    root.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !root.open) return;
      event.preventDefault();
      root.open = false;
      root.querySelector("summary")?.focus();
    });
    document.addEventListener("click", (event) => {
      // The path, not the target: inside a shadow root (the widget) the target is its host.
      if (root.open && !event.composedPath().includes(root)) root.open = false;
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && root.open) root.open = false;
    });
  }

  start(): void {
    this.refresh();
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.refresh();
    });
  }

  /** Redraws with the current name (after the site's words arrived). */
  redraw(): void {
    if (this.#chain.length) this.#draw(this.#chain);
  }

  async refresh(): Promise<void> {
    clearTimeout(this.#timer);
    const startedAt = performance.now();
    let chain: ChainLink[];
    let health: HealthResponse | null = null;
    try {
      health = await this.api.health();
      const latencyMs = Math.round(performance.now() - startedAt);
      // The page is running, whatever the relay believes about where it is served from.
      chain = health.chain.map((link): ChainLink =>
        link.name === "frontend"
          ? { ...link, status: "online" }
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
        detail: name === "relay" ? detail : "",
        checkedAt: now,
        latencyMs: null,
      }));
    }
    this.#chain = chain;
    this.#draw(chain);
    this.onHealth(health);
    // Two refreshes may overlap (a tab shown mid-poll): only one timer may survive.
    clearTimeout(this.#timer);
    if (document.visibilityState !== "hidden") {
      this.#timer = setTimeout(() => this.refresh(), REFRESH_MS);
    }
  }

  #draw(chain: ChainLink[]): void {
    const { status, text } = chainSummary(chain, this.name);
    this.dot.dataset.status = status;
    if (this.summary.textContent !== text) this.summary.textContent = text;
    this.list.replaceChildren(...chain.map((link) => {
      const item = document.createElement("li");
      item.dataset.status = link.status;
      const name = document.createElement("strong");
      name.textContent = LINK_NAMES[link.name];
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = STATUS_WORDS[link.status];
      const detail = document.createElement("span");
      detail.className = "detail";
      const parts = [linkDetail(link)];
      const saysMs = /\d ms\b/.test(parts[0]!);
      if (link.latencyMs !== null && link.name !== "frontend" && !saysMs) {
        parts.push(`${link.latencyMs} ms`);
      }
      if (link.checkedAt && link.name !== "frontend") {
        parts.push(`checked ${new Date(link.checkedAt).toLocaleTimeString()}`);
      }
      detail.textContent = parts.filter(Boolean).join(" · ");
      item.append(name, state, detail);
      return item;
    }));
  }
}
