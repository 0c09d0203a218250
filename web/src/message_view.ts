/**
 * Draws the conversation into the message list. Finished messages are rendered once and
 * never touched again; only the answer being streamed is redrawn, at most once per
 * animation frame, however fast its tokens arrive.
 */
import type { LiveAnswer, ShownMessage } from "./chat_state.ts";
import { renderMarkdown } from "./markdown.ts";

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = "",
  text = "",
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** The "thinking" drawer: reasoning and tool activity, closed unless the visitor opens it. */
function thinkingDrawer(): { root: HTMLDetailsElement; tool: HTMLElement; reasoning: HTMLElement } {
  const root = element("details", "thinking");
  root.append(element("summary", "", "Thinking"));
  const tool = element("pre", "tool-activity");
  const reasoning = element("div", "reasoning");
  root.append(tool, reasoning);
  return { root, tool, reasoning };
}

function fillDrawer(drawer: ReturnType<typeof thinkingDrawer>, tool: string, reasoning: string) {
  drawer.root.hidden = !tool && !reasoning;
  drawer.tool.hidden = !tool;
  drawer.tool.textContent = tool.trimEnd();
  drawer.reasoning.hidden = !reasoning;
  drawer.reasoning.textContent = reasoning.trim();
  const steps = tool ? tool.trimEnd().split("\n").length : 0;
  drawer.root.querySelector("summary")!.textContent = steps
    ? `Thinking · ${steps} tool ${steps === 1 ? "step" : "steps"}`
    : "Thinking";
}

function header(sender: string, createdAt: string | null): HTMLElement {
  const head = element("div", "meta");
  head.append(element("span", "sender", sender === "Terra" ? "Terra" : "You"));
  if (createdAt) {
    const time = element("time", "", timeFormat.format(new Date(createdAt)));
    time.dateTime = createdAt;
    head.append(time);
  }
  return head;
}

export class MessageView {
  #live: {
    item: HTMLLIElement;
    body: HTMLElement;
    drawer: ReturnType<typeof thinkingDrawer>;
    answer: LiveAnswer;
  } | null = null;
  #frame = 0;

  constructor(readonly list: HTMLOListElement, readonly onChange: () => void) {}

  clear(): void {
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    this.#live = null;
    this.list.replaceChildren();
  }

  /** Adds a finished message at its place (by sequence number). */
  addMessage(message: ShownMessage, replacesLive: boolean): void {
    if (replacesLive) this.#dropLive();
    const item = element("li", `message ${message.sender === "Terra" ? "terra" : "visitor"}`);
    item.dataset.seq = String(message.seq);
    item.dataset.id = message.id;
    item.append(header(message.sender, message.createdAt));
    if (message.sender === "Terra") {
      const drawer = thinkingDrawer();
      fillDrawer(drawer, message.tool, message.reasoning);
      item.append(drawer.root);
    }
    const body = element("div", "body");
    if (message.sender === "Terra") body.innerHTML = renderMarkdown(message.content);
    else body.textContent = message.content;
    item.append(body);
    if (message.stopped) item.append(element("p", "tag", "Stopped before the end"));
    const next = [...this.list.children].find((li) =>
      li !== this.#live?.item && Number((li as HTMLElement).dataset.seq) > message.seq
    );
    this.list.insertBefore(item, next ?? this.#live?.item ?? null);
    this.onChange();
  }

  /** Shows the answer being generated; redrawn on the next animation frame. */
  showLive(answer: LiveAnswer): void {
    if (!this.#live) {
      const item = element("li", "message terra live");
      item.setAttribute("aria-busy", "true");
      const drawer = thinkingDrawer();
      const body = element("div", "body");
      item.append(header("Terra", null), drawer.root, body, element("span", "typing", ""));
      this.list.append(item);
      this.#live = { item, body, drawer, answer };
    }
    this.#live.answer = answer;
    if (!this.#frame) this.#frame = requestAnimationFrame(() => this.#drawLive());
  }

  /** Ends the live answer without a stored reply (an error stopped it). */
  endLive(): void {
    if (!this.#live) return;
    this.#drawLive();
    this.#live.item.classList.remove("live");
    this.#live.item.setAttribute("aria-busy", "false");
    this.#live = null;
  }

  #drawLive(): void {
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    const live = this.#live;
    if (!live) return;
    const { texts } = live.answer;
    fillDrawer(live.drawer, texts.tool, texts.reasoning);
    live.body.innerHTML = renderMarkdown(texts.answer);
    this.onChange();
  }

  #dropLive(): void {
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    this.#live?.item.remove();
    this.#live = null;
  }
}
