/// <reference lib="dom" />
/**
 * The widget's chat: the second DOM shell around the same chat core as the page (gate,
 * welcome, messages, failure rows, notices, status, Stop), drawn into the widget's panel
 * inside its shadow root. Loaded by `widget_loader.ts` on first open, as its own chunk.
 */
import type { SiteProfile } from "../../lib/protocol.ts";
import { RelayApi } from "./api.ts";
import { ChatCore, type ChatShell } from "./chat_core.ts";
import { Composer } from "./composer.ts";
import { renderMarkdown } from "./markdown.ts";
import { MessageView } from "./message_view.ts";
import type { Notice } from "./notices.ts";
import { ScrollPin } from "./scroll_pin.ts";
import { showFailure, wireControls, withCountdown } from "./shell_parts.ts";
import { loadSiteWords } from "./site_words.ts";
import { StatusChain } from "./status_chain.ts";
import { scopeStorage } from "./storage.ts";

/** The panel's parts; ids are the shadow root's own, so they cannot clash with the host's. */
const PANEL = `
<div class="bar">
  <h2 class="title"><span id="title-name">Terra</span></h2>
  <details class="chain" id="chain">
    <summary><span class="dot" id="chain-dot" data-status="unknown"></span><span
      id="chain-summary" class="chain-summary">Checking…</span></summary>
    <ol class="chain-links" id="chain-links" aria-label="Status of each part"></ol>
  </details>
  <div class="actions" role="group" aria-label="Chat actions">
    <button type="button" id="new-chat" class="ghost icon-button" hidden><span class="icon"
      aria-hidden="true">+</span><span class="label">New chat</span></button>
    <button type="button" id="download" class="ghost icon-button" hidden><span class="icon"
      aria-hidden="true">↓</span><span class="label">Download</span></button>
    <button type="button" id="close" class="ghost icon-button"><span class="icon"
      aria-hidden="true">×</span><span class="label">Close the chat</span></button>
  </div>
</div>
<div class="main">
  <section id="gate" class="gate" hidden aria-labelledby="gate-title">
    <form id="gate-form" class="gate-card" novalidate>
      <h3 id="gate-title">Enter the access code</h3>
      <p id="gate-text" class="pending">Terra is an AI assistant that answers questions about
        this site and its author.</p>
      <label for="gate-code">Access code</label>
      <input id="gate-code" name="code" type="password" autocomplete="current-password"
        required maxlength="512" aria-describedby="gate-help gate-error">
      <p id="gate-error" class="error" role="alert"></p>
      <button type="submit" id="gate-submit">Start chatting</button>
      <div id="gate-help" class="gate-help pending">Ask the site owner for an access code.</div>
    </form>
  </section>
  <section id="chat" class="chat" hidden aria-label="Conversation">
    <div class="conversation">
      <ol id="messages" class="messages" aria-label="Messages" tabindex="0"></ol>
      <button type="button" id="new-messages" class="badge" hidden>New messages ↓</button>
    </div>
    <div id="notice" class="notice" role="status" hidden></div>
    <div id="announcer" class="visually-hidden" aria-live="polite"></div>
    <form id="composer" class="composer" novalidate>
      <label for="composer-input" class="visually-hidden">Your message</label>
      <textarea id="composer-input" rows="1" placeholder="Ask Terra something…"
        aria-describedby="composer-count composer-hint" enterkeyhint="send"></textarea>
      <span id="composer-hint"
        class="visually-hidden">Enter sends, Shift+Enter adds a new line.</span>
      <span id="composer-count" class="count" aria-live="polite"></span>
      <button type="button" id="stop" class="stop" hidden>Stop</button>
      <button type="submit" id="send">Send</button>
    </form>
  </section>
</div>`;

/** What the loader passes in. */
export interface WidgetChatOptions {
  /** The panel, inside the widget's shadow root. */
  panel: HTMLElement;
  apiBase: URL;
  /** Drawn inline in the host's container: no close button. */
  inline: boolean;
  onClose(): void;
  /** A new answer arrived while the visitor watched (the loader marks it unread if closed). */
  onAnswer(): void;
}

/** What the loader can ask of the drawn chat. */
export interface WidgetChat {
  /** Focus into the chat: the code box on the gate, else the message box. */
  focus(): void;
  /** The panel became visible: follow the newest message again. */
  shown(): void;
}

/** Draws the chat into `options.panel` and starts it. */
export function mountChat(options: WidgetChatOptions): WidgetChat {
  const { panel } = options;
  scopeStorage(options.apiBase.href);
  panel.innerHTML = PANEL;
  const part = <T extends HTMLElement>(id: string): T => {
    const node = panel.querySelector<T>(`#${id}`);
    if (!node) throw new Error(`The widget is missing #${id}`);
    return node;
  };
  const shadow = panel.getRootNode() as ShadowRoot | Document;
  const focused = () => shadow.activeElement;

  const api = new RelayApi(options.apiBase);
  const gate = part("gate");
  const gateForm = part<HTMLFormElement>("gate-form");
  const gateCode = part<HTMLInputElement>("gate-code");
  const gateError = part("gate-error");
  const gateSubmit = part<HTMLButtonElement>("gate-submit");
  const chat = part("chat");
  const notice = part("notice");
  const announcer = part("announcer");
  const stopButton = part<HTMLButtonElement>("stop");
  const list = part<HTMLOListElement>("messages");
  const closeButton = part<HTMLButtonElement>("close");
  const chatActions = [part<HTMLButtonElement>("new-chat"), part<HTMLButtonElement>("download")];
  closeButton.hidden = options.inline;

  const pin = new ScrollPin(list, part("new-messages"));
  const view = new MessageView(list, () => pin.contentChanged(), (text) => {
    announcer.textContent = "";
    requestAnimationFrame(() => announcer.textContent = text);
  });
  const composer = new Composer(
    part("composer"),
    part("composer-input"),
    part("composer-count"),
    part("send"),
    (text) => void send(text),
  );
  let chatOpen = false;
  let wordsLoaded = false;

  const shell: ChatShell = {
    showGate(message, countdown) {
      const first = gate.hidden;
      chatOpen = false;
      chat.hidden = true;
      gate.hidden = false;
      for (const button of chatActions) button.hidden = true;
      withCountdown(gateError, message, countdown);
      gateCode.setAttribute("aria-invalid", String(Boolean(message)));
      gateSubmit.disabled = countdown !== undefined && countdown > 0;
      if (first && panel.contains(focused())) gateCode.focus();
    },
    openChat() {
      const hadFocus = panel.contains(focused());
      chatOpen = true;
      view.clear();
      gate.hidden = true;
      chat.hidden = false;
      for (const button of chatActions) button.hidden = false;
      if (core.session?.maxMessageLength) composer.maxLength = core.session.maxMessageLength;
      if (wordsLoaded) view.showWelcome(core.words, askSuggestion);
      pin.toBottom();
      if (hadFocus) composer.input.focus();
    },
    message(message, replacesLive, fresh) {
      view.addMessage(message, replacesLive, fresh);
      if (fresh && message.sender === "Terra") options.onAnswer();
    },
    live: (answer) => view.showLive(answer),
    liveEnded: () => view.endLive(),
    failure: (messageId, failure) => showFailure(view, core, messageId, failure),
    notice(next: Notice | null) {
      notice.hidden = !next;
      notice.dataset.tone = next?.tone ?? "";
      withCountdown(notice, next?.text ?? "", next?.countdown);
    },
    answering(answering) {
      const hadFocus = focused() === stopButton;
      stopButton.hidden = !answering;
      if (hadFocus && !answering) composer.input.focus();
    },
    refreshHealth() {
      void status.refresh();
      setTimeout(() => void status.refresh(), 3000);
    },
  };

  const core = new ChatCore(api, shell);
  const status = new StatusChain(
    api,
    part("chain"),
    part("chain-dot"),
    part("chain-summary"),
    part("chain-links"),
    (health) => core.setHealth(health),
  );

  async function send(text: string): Promise<void> {
    pin.toBottom();
    composer.busy = true;
    try {
      if (await core.send(text)) {
        composer.clear();
        pin.toBottom();
      }
    } finally {
      composer.busy = false;
    }
    if (chatOpen && !panel.contains(focused())) composer.input.focus();
  }

  function askSuggestion(question: string): void {
    composer.input.focus();
    void send(question);
  }

  function applyWords(words: SiteProfile): void {
    core.words = words;
    wordsLoaded = true;
    view.name = words.assistantName;
    status.name = words.assistantName;
    status.redraw();
    part("title-name").textContent = words.assistantName;
    part("gate-text").textContent = words.gateText;
    part("gate-help").innerHTML = renderMarkdown(words.accessHelp, { breaks: false });
    for (const id of ["gate-text", "gate-help"]) part(id).classList.remove("pending");
    composer.input.placeholder = `Ask ${words.assistantName} something…`;
    if (chatOpen) view.showWelcome(words, askSuggestion);
  }

  wireControls(core, {
    gateForm,
    gateCode,
    gateSubmit,
    gateError,
    stopButton,
    newChat: chatActions[0]!,
    downloadButton: chatActions[1]!,
    composerInput: composer.input,
  });
  closeButton.addEventListener("click", () => options.onClose());
  // Esc with the status popover open closes the popover, not the panel, wherever focus is
  // in the panel (capture: before the loader's Esc on the panel itself).
  const chain = part<HTMLDetailsElement>("chain");
  panel.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !chain.open) return;
    event.preventDefault();
    chain.open = false;
    chain.querySelector("summary")?.focus();
  }, true);

  status.start();
  core.start();
  void loadSiteWords(api).then(applyWords);

  return {
    focus() {
      if (!gate.hidden) gateCode.focus();
      else composer.input.focus();
    },
    shown() {
      if (pin.pinned) pin.toBottom();
    },
  };
}
