/**
 * What both shells of the chat core (the page, `main.ts`, and the widget,
 * `widget_chat.ts`) draw and wire the same way: a sentence with its countdown, the Retry
 * button of a failed turn, and the gate, Stop, New chat and Download controls.
 */
import type { TurnFailure } from "../../lib/protocol.ts";
import type { ChatCore } from "./chat_core.ts";
import type { MessageView } from "./message_view.ts";
import { countdownText } from "./notices.ts";
import { download } from "./transcript.ts";

/**
 * Shows `text` in `target`, with a visible countdown (and its sentence once, for screen
 * readers) when `countdown` is given; a tick only rewrites the countdown.
 */
export function withCountdown(
  target: HTMLElement,
  text: string,
  countdown: number | undefined,
): void {
  const ticking = target.querySelector<HTMLElement>(".countdown");
  if (target.dataset.text === text && ticking && countdown !== undefined) {
    ticking.textContent = ` ${countdownText(countdown)}`;
    return;
  }
  target.dataset.text = text;
  target.replaceChildren(text);
  if (countdown === undefined) return;
  const once = document.createElement("span");
  once.className = "visually-hidden";
  once.textContent = ` Try again in ${countdown} seconds.`;
  const visible = document.createElement("span");
  visible.className = "countdown";
  visible.setAttribute("aria-hidden", "true");
  visible.textContent = ` ${countdownText(countdown)}`;
  target.append(once, visible);
}

/** The failed turn's row, whose Retry button re-opens the turn. */
export function showFailure(
  view: MessageView,
  core: ChatCore,
  messageId: string,
  failure: TurnFailure | null,
): void {
  view.showFailure(messageId, failure, async (id, button) => {
    button.disabled = true;
    button.textContent = "Retrying…";
    if (!await core.retry(id)) {
      button.disabled = false;
      button.textContent = "Retry";
    }
  });
}

/** The elements `wireControls()` listens on. */
export interface ShellControls {
  gateForm: HTMLFormElement;
  gateCode: HTMLInputElement;
  gateSubmit: HTMLButtonElement;
  gateError: HTMLElement;
  stopButton: HTMLButtonElement;
  newChat: HTMLButtonElement;
  downloadButton: HTMLButtonElement;
  /** Where focus goes after Stop (the message box). */
  composerInput: HTMLTextAreaElement;
}

/** Wires the gate, Stop, New chat and Download to `core`. */
export function wireControls(core: ChatCore, controls: ShellControls): void {
  const { gateForm, gateCode, gateSubmit, gateError, stopButton } = controls;
  gateForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    gateSubmit.disabled = true;
    try {
      if (await core.signIn(gateCode.value.trim())) gateCode.value = "";
    } finally {
      // A lockout keeps the button disabled until its countdown ends.
      if (!gateError.querySelector(".countdown")) gateSubmit.disabled = false;
    }
  });
  stopButton.addEventListener("click", async () => {
    stopButton.disabled = true;
    try {
      await core.stop();
    } finally {
      stopButton.disabled = false;
      controls.composerInput.focus();
    }
  });
  controls.newChat.addEventListener("click", () => core.newChat());
  controls.downloadButton.addEventListener("click", () => {
    download(`terra-chat-${core.chatId.slice(0, 8)}.md`, core.transcript());
  });
}
