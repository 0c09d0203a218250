/// <reference lib="dom" />
/**
 * The chat page: the DOM shell around the chat core. It draws what the core reports (the
 * gate, the welcome, messages, failure rows, notices) and turns clicks and keys into the
 * core's actions; the chat's logic lives in `chat_core.ts`, so another shell can reuse it.
 */
import type { SiteProfile } from "../../lib/protocol.ts";
import { apiBase, RelayApi } from "./api.ts";
import { ChatCore, type ChatShell } from "./chat_core.ts";
import { Composer } from "./composer.ts";
import { renderMarkdown } from "./markdown.ts";
import { MessageView } from "./message_view.ts";
import type { Notice } from "./notices.ts";
import { ScrollPin } from "./scroll_pin.ts";
import { showFailure, wireControls, withCountdown } from "./shell_parts.ts";
import { loadSiteWords } from "./site_words.ts";
import { StatusChain } from "./status_chain.ts";
import { themeToggle } from "./theme.ts";

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`The page is missing #${id}`);
  return node as T;
}

const api = new RelayApi(apiBase());
const skip = byId<HTMLAnchorElement>("skip");
const gate = byId<HTMLElement>("gate");
const gateForm = byId<HTMLFormElement>("gate-form");
const gateCode = byId<HTMLInputElement>("gate-code");
const gateError = byId<HTMLElement>("gate-error");
const gateSubmit = byId<HTMLButtonElement>("gate-submit");
const chat = byId<HTMLElement>("chat");
const notice = byId<HTMLElement>("notice");
const announcer = byId<HTMLElement>("announcer");
const stopButton = byId<HTMLButtonElement>("stop");
const list = byId<HTMLOListElement>("messages");
const chatActions = [byId<HTMLButtonElement>("new-chat"), byId<HTMLButtonElement>("download")];

const pin = new ScrollPin(list, byId("new-messages"));
const view = new MessageView(list, () => pin.contentChanged(), (text) => {
  // Emptied first so the same words said twice are still announced.
  announcer.textContent = "";
  requestAnimationFrame(() => announcer.textContent = text);
});
const composer = new Composer(
  byId("composer"),
  byId("composer-input"),
  byId("composer-count"),
  byId("send"),
  (text) => void send(text),
);
let chatOpen = false;
/** The operator's words arrived: until then the gate's texts are held back and no welcome is drawn. */
let wordsLoaded = false;

const shell: ChatShell = {
  showGate(message, countdown) {
    const first = gate.hidden;
    chatOpen = false;
    chat.hidden = true;
    gate.hidden = false;
    for (const button of chatActions) button.hidden = true;
    skip.href = "#gate-code";
    skip.textContent = "Skip to the access code";
    withCountdown(gateError, message, countdown);
    gateCode.setAttribute("aria-invalid", String(Boolean(message)));
    gateSubmit.disabled = countdown !== undefined && countdown > 0;
    if (first) gateCode.focus();
  },
  openChat() {
    chatOpen = true;
    view.clear();
    gate.hidden = true;
    chat.hidden = false;
    for (const button of chatActions) button.hidden = false;
    skip.href = "#composer-input";
    skip.textContent = "Skip to the message box";
    if (core.session?.maxMessageLength) composer.maxLength = core.session.maxMessageLength;
    if (wordsLoaded) view.showWelcome(core.words, askSuggestion);
    pin.toBottom();
    composer.input.focus();
  },
  message: (message, replacesLive, fresh) => view.addMessage(message, replacesLive, fresh),
  live: (answer) => view.showLive(answer),
  liveEnded: () => view.endLive(),
  failure: (messageId, failure) => showFailure(view, core, messageId, failure),
  notice(next: Notice | null) {
    notice.hidden = !next;
    notice.dataset.tone = next?.tone ?? "";
    withCountdown(notice, next?.text ?? "", next?.countdown);
  },
  answering(answering) {
    // Stop vanishes when the answer ends; focus must not fall to <body> with it.
    const hadFocus = document.activeElement === stopButton;
    stopButton.hidden = !answering;
    if (hadFocus && !answering) composer.input.focus();
  },
  refreshHealth() {
    // Now, and once more shortly: the worker's status push may land just after the event.
    void status.refresh();
    setTimeout(() => void status.refresh(), 3000);
  },
};

const core = new ChatCore(api, shell);
const status = new StatusChain(
  api,
  byId("chain"),
  byId("chain-dot"),
  byId("chain-summary"),
  byId("chain-links"),
  (health) => core.setHealth(health),
);

async function send(text: string): Promise<void> {
  // Sending is the visitor saying "show me what comes next".
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
  if (chatOpen && document.activeElement === document.body) composer.input.focus();
}

/** A suggested question, clicked: asked, with focus where the next question is typed. */
function askSuggestion(question: string): void {
  composer.input.focus();
  void send(question);
}

/** The operator's words: title, names, gate, welcome, away text. */
function applyWords(words: SiteProfile): void {
  core.words = words;
  wordsLoaded = true;
  view.name = words.assistantName;
  status.name = words.assistantName;
  status.redraw();
  document.title = `Chat with ${words.assistantName} · ${words.siteName}`;
  byId("title-name").textContent = words.assistantName;
  byId("gate-text").textContent = words.gateText;
  byId("gate-help").innerHTML = renderMarkdown(words.accessHelp, { breaks: false });
  // Shown only now, so the neutral words in the HTML do not flash before the operator's.
  for (const id of ["gate-text", "gate-help"]) byId(id).classList.remove("pending");
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

themeToggle(byId("theme"));
status.start();
core.start();
void loadSiteWords(api).then(applyWords);
