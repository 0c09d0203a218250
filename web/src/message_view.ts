/**
 * Draws the conversation into the message list. Finished messages are rendered once and
 * never touched again; only the answer being streamed is redrawn, at most once per
 * animation frame, however fast its tokens arrive. The list is not a live region (it would
 * announce every redrawn frame): a finished answer is announced once, through `announce`.
 */
import type { SiteProfile, TurnFailure } from "../../lib/protocol.ts";
import type { LiveAnswer, ShownMessage } from "./chat_state.ts";
import { renderMarkdown } from "./markdown.ts";
import { safeSources } from "./sources.ts";

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

function header(sender: string, createdAt: string | null, name: string): HTMLElement {
  const head = element("div", "meta");
  head.append(element("span", "sender", sender === "Terra" ? name : "You"));
  if (createdAt) {
    const time = element("time", "", timeFormat.format(new Date(createdAt)));
    time.dateTime = createdAt;
    head.append(time);
  }
  return head;
}

/** "Sources: About · Projects" under an answer: checked links, titles as text. */
function sourceLinks(message: ShownMessage): HTMLElement | null {
  const sources = safeSources(message.sources);
  if (!sources.length) return null;
  const root = element("div", "sources");
  const label = element("span", "sources-label", "Sources");
  label.id = `sources-${message.id}`;
  const list = element("ul");
  list.setAttribute("aria-labelledby", label.id);
  for (const source of sources) {
    const link = element("a", "", source.text);
    link.href = source.href;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    link.title = `${source.kind}: ${source.href}`;
    const entry = element("li");
    entry.dataset.kind = source.kind;
    entry.append(link);
    list.append(entry);
  }
  root.append(label, list);
  return root;
}

export class MessageView {
  #live: {
    item: HTMLLIElement;
    body: HTMLElement;
    drawer: ReturnType<typeof thinkingDrawer>;
    answer: LiveAnswer;
  } | null = null;
  #frame = 0;
  #welcome: HTMLLIElement | null = null;
  /** Terra's name as the operator set it. */
  name = "Terra";

  constructor(
    readonly list: HTMLOListElement,
    readonly onChange: () => void,
    /** Says a finished answer once to screen readers. */
    readonly announce: (text: string) => void = () => {},
  ) {}

  clear(): void {
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    this.#live = null;
    this.#welcome = null;
    this.list.replaceChildren();
  }

  /**
   * The start of every chat: the operator's greeting and, until the first question, the
   * suggested questions (a click asks it).
   */
  showWelcome(words: SiteProfile, ask: (question: string) => void): void {
    this.#welcome?.remove();
    const item = element("li", "welcome");
    item.dataset.seq = "-1";
    item.append(header("Terra", null, this.name));
    const body = element("div", "body");
    body.innerHTML = renderMarkdown(words.greeting, { breaks: false });
    item.append(body);
    if (words.suggestions.length && !this.list.querySelector(".message")) {
      const list = element("ul", "suggestions");
      list.setAttribute("aria-label", "Suggested questions");
      for (const question of words.suggestions) {
        const button = element("button", "suggestion", question);
        button.type = "button";
        button.addEventListener("click", () => ask(question));
        const entry = element("li");
        entry.append(button);
        list.append(entry);
      }
      item.append(list);
    }
    this.list.prepend(item);
    this.#welcome = item;
    this.onChange();
  }

  /** The first question went out: the suggestions have done their job. */
  #hideSuggestions(): void {
    const suggestions = this.#welcome?.querySelector(".suggestions");
    // A suggestion that had focus gave it to the message box when clicked (see main.ts).
    suggestions?.remove();
  }

  /** Shows (or with `null`, removes) the failure row under visitor message `messageId`. */
  showFailure(
    messageId: string,
    failure: TurnFailure | null,
    retry: (messageId: string, button: HTMLButtonElement) => void,
  ): void {
    const existing = this.list.querySelector<HTMLElement>(
      `li.failure[data-for="${CSS.escape(messageId)}"]`,
    );
    if (!failure) {
      if (existing) {
        existing.remove();
        this.onChange();
      }
      return;
    }
    // Under the question, or under the text Terra got out before the failure cut it off.
    const anchor = [
      ...this.list.querySelectorAll<HTMLElement>(
        `li.message.visitor[data-id="${CSS.escape(messageId)}"], ` +
          `li.message.terra[data-reply-to="${CSS.escape(messageId)}"]`,
      ),
    ].at(-1);
    if (!anchor) return;
    const row = element("li", "failure");
    row.dataset.for = messageId;
    row.dataset.seq = String(Number(anchor.dataset.seq) + 0.5);
    row.dataset.code = failure.code;
    const text = element("p", "", failure.error || `${this.name} could not answer this.`);
    const button = element("button", "retry", "Retry");
    button.type = "button";
    button.setAttribute("aria-label", "Retry this question");
    button.addEventListener("click", () => retry(messageId, button));
    row.append(text, button);
    existing?.remove();
    anchor.after(row);
    this.onChange();
  }

  /**
   * Adds a finished message at its place (by sequence number). `fresh`: it arrived while
   * the visitor watched (not in the replay of a reload), so an answer is announced.
   */
  addMessage(message: ShownMessage, replacesLive: boolean, fresh = false): void {
    if (replacesLive) this.#dropLive();
    if (message.sender === "Visitor") this.#hideSuggestions();
    const item = element("li", `message ${message.sender === "Terra" ? "terra" : "visitor"}`);
    item.dataset.seq = String(message.seq);
    item.dataset.id = message.id;
    if (message.replyTo) item.dataset.replyTo = message.replyTo;
    item.append(header(message.sender, message.createdAt, this.name));
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
    else if (message.interrupted) {
      item.append(element("p", "tag interrupted", "Interrupted: the answer was cut off"));
    }
    const sources = message.sender === "Terra" ? sourceLinks(message) : null;
    if (sources) item.append(sources);
    const next = [...this.list.children].find((li) =>
      li !== this.#live?.item && Number((li as HTMLElement).dataset.seq) > message.seq
    );
    this.list.insertBefore(item, next ?? this.#live?.item ?? null);
    const row = message.replyTo
      ? this.list.querySelector<HTMLElement>(
        `li.failure[data-for="${CSS.escape(message.replyTo)}"]`,
      )
      : null;
    if (row && Number(row.dataset.seq) < message.seq) {
      row.dataset.seq = String(message.seq + 0.5);
      item.after(row);
    }
    if (fresh && message.sender === "Terra") {
      const tag = message.stopped ? " (stopped)" : message.interrupted ? " (interrupted)" : "";
      this.announce(`${this.name}${tag}: ${body.textContent ?? ""}`.slice(0, 2000));
    }
    this.onChange();
  }

  /** Shows the answer being generated; redrawn on the next animation frame. */
  showLive(answer: LiveAnswer): void {
    if (!this.#live) {
      const item = element("li", "message terra live");
      item.setAttribute("aria-busy", "true");
      const drawer = thinkingDrawer();
      const body = element("div", "body");
      item.append(header("Terra", null, this.name), drawer.root, body, element("span", "typing"));
      this.list.append(item);
      this.#live = { item, body, drawer, answer };
    }
    this.#live.answer = answer;
    if (!this.#frame) this.#frame = requestAnimationFrame(() => this.#drawLive());
  }

  /**
   * Ends the live answer without a stored reply (a failure stopped it). Without any answer
   * text it goes: a failure is never drawn as Terra's words. With text it stays until the
   * stored, interrupted reply takes its place.
   */
  endLive(): void {
    if (!this.#live) return;
    if (!this.#live.answer.texts.answer.trim()) return this.#dropLive();
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
