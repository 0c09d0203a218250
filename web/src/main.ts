/// <reference lib="dom" />
/**
 * The chat page: the access-code gate, then one chat per tab over a resuming socket.
 * Wires the parts together; each part lives in its own module.
 */
import { apiBase, ApiError, RelayApi, type Session } from "./api.ts";
import { ChatSocket, type Connection } from "./chat_socket.ts";
import { ChatState } from "./chat_state.ts";
import { Composer } from "./composer.ts";
import { MessageView } from "./message_view.ts";
import { ScrollPin } from "./scroll_pin.ts";
import { StatusChain } from "./status_chain.ts";
import {
  chatId as tabChatId,
  forgetSession,
  loadSession,
  newChatId,
  saveSession,
} from "./storage.ts";
import { themeToggle } from "./theme.ts";
import { download, transcriptMarkdown } from "./transcript.ts";
import { noticeFor } from "./notices.ts";

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`The page is missing #${id}`);
  return node as T;
}

const api = new RelayApi(apiBase());
const gate = byId<HTMLElement>("gate");
const gateForm = byId<HTMLFormElement>("gate-form");
const gateCode = byId<HTMLInputElement>("gate-code");
const gateError = byId<HTMLElement>("gate-error");
const gateSubmit = byId<HTMLButtonElement>("gate-submit");
const chat = byId<HTMLElement>("chat");
const notice = byId<HTMLElement>("notice");
const stopButton = byId<HTMLButtonElement>("stop");
const list = byId<HTMLOListElement>("messages");

const pin = new ScrollPin(list, byId("new-messages"));
const view = new MessageView(list, () => pin.contentChanged());
const status = new StatusChain(api, byId("chain-dot"), byId("chain-summary"), byId("chain-links"));
const composer = new Composer(
  byId("composer"),
  byId("composer-input"),
  byId("composer-count"),
  byId("send"),
  (text) => void send(text),
);

let session: Session | null = null;
let chatId = tabChatId();
let state = new ChatState();
let socket: ChatSocket | null = null;
let connection: { state: Connection; detail: string } = { state: "connecting", detail: "" };
/** A failure the visitor should read until the next thing happens. */
let problem: string | null = null;

function showNotice(): void {
  const text = noticeFor(state.workerState, connection, problem);
  notice.hidden = !text;
  notice.textContent = text?.text ?? "";
  notice.dataset.tone = text?.tone ?? "";
  stopButton.hidden = !state.answering;
}

function showGate(message = ""): void {
  socket?.close();
  socket = null;
  session = null;
  chat.hidden = true;
  gate.hidden = false;
  gateError.textContent = message;
  gateCode.setAttribute("aria-invalid", String(Boolean(message)));
  gateCode.focus();
}

function openChat(): void {
  if (!session) return showGate();
  socket?.close();
  state = new ChatState();
  problem = null;
  view.clear();
  gate.hidden = true;
  chat.hidden = false;
  if (session.maxMessageLength) composer.maxLength = session.maxMessageLength;
  socket = new ChatSocket(api.socketUrl(chatId), session.token, () => state.lastSeq, {
    onEvent(event) {
      const change = state.apply(event);
      if (change.kind === "message") view.addMessage(change.message, change.replacesLive);
      else if (change.kind === "live" && state.live) view.showLive(state.live);
      else if (change.kind === "state") {
        if (change.state.state === "error") view.endLive();
        if (change.state.state !== "error") problem = null;
      }
      showNotice();
    },
    onConnection(next, detail) {
      connection = { state: next, detail };
      showNotice();
    },
    onRefused(reason) {
      forgetSession();
      showGate(reason);
    },
  });
  socket.start();
  pin.toBottom();
  showNotice();
  composer.input.focus();
}

async function send(text: string): Promise<void> {
  if (!session) return showGate();
  composer.busy = true;
  try {
    await api.postMessage(session.token, chatId, text);
    composer.clear();
    problem = null;
    pin.toBottom();
  } catch (error) {
    handleFailure(error);
  } finally {
    composer.busy = false;
    showNotice();
  }
}

function handleFailure(error: unknown): void {
  if (error instanceof ApiError && error.needsCode) {
    forgetSession();
    return showGate(error.message);
  }
  problem = error instanceof Error ? error.message : String(error);
  if (error instanceof ApiError && error.retryAfterSeconds) {
    problem += ` Try again in ${error.retryAfterSeconds} s.`;
  }
}

gateForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = gateCode.value.trim();
  if (!code) return showGate("Enter the access code.");
  gateSubmit.disabled = true;
  gateError.textContent = "";
  try {
    session = await api.createSession(code);
    saveSession(session);
    gateCode.value = "";
    openChat();
  } catch (error) {
    let message = error instanceof Error ? error.message : String(error);
    if (error instanceof ApiError && error.retryAfterSeconds) {
      message += ` Try again in ${error.retryAfterSeconds} s.`;
    }
    showGate(message);
  } finally {
    gateSubmit.disabled = false;
  }
});

stopButton.addEventListener("click", async () => {
  if (!session) return;
  stopButton.disabled = true;
  try {
    await api.cancel(session.token, chatId);
  } catch (error) {
    handleFailure(error);
    showNotice();
  } finally {
    stopButton.disabled = false;
  }
});

byId("new-chat").addEventListener("click", () => {
  chatId = newChatId();
  openChat();
});

byId("download").addEventListener("click", () => {
  download(`terra-chat-${chatId.slice(0, 8)}.md`, transcriptMarkdown(chatId, state.messages));
});

themeToggle(byId("theme"));
status.start();
session = loadSession();
if (session) openChat();
else showGate();
