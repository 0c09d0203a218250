/**
 * The chat itself, apart from any DOM: the session, the tab's chat, its resuming socket,
 * what is shown as going on (notices, away states, countdowns), failed turns and their
 * retry. A shell (the page today, an embeddable widget later) draws what it is told and
 * calls the actions; nothing here touches the document.
 */
import type { HealthResponse, SiteProfile, TurnFailure } from "../../lib/protocol.ts";
import { ApiError, type RelayApi, type Session } from "./api.ts";
import { type Availability, availabilityOf } from "./availability.ts";
import { ChatSocket, type Connection } from "./chat_socket.ts";
import { ChatState, type LiveAnswer, type ShownMessage } from "./chat_state.ts";
import { beforeCountdown, type Notice, noticeFor, type Problem, sentence } from "./notices.ts";
import { FALLBACK_WORDS } from "./site_words.ts";
import {
  chatId as tabChatId,
  forgetSession,
  loadSession,
  newChatId,
  saveSession,
} from "./storage.ts";
import { transcriptMarkdown } from "./transcript.ts";

/** What a shell draws; every call says what changed, and only when it changed. */
export interface ChatShell {
  /** The access code is needed (again); `countdown` seconds before a lockout ends. */
  showGate(message: string, countdown?: number): void;
  /** A chat opened (or a new one started): clear the conversation, show the welcome. */
  openChat(): void;
  message(message: ShownMessage, replacesLive: boolean, fresh: boolean): void;
  live(answer: LiveAnswer): void;
  liveEnded(): void;
  /** The failure row under visitor message `messageId`, or its removal (`null`). */
  failure(messageId: string, failure: TurnFailure | null): void;
  notice(notice: Notice | null): void;
  answering(answering: boolean): void;
  /** Something happened that the status chain should show now, not in 15 s. */
  refreshHealth(): void;
}

const TICK_MS = 1000;

export class ChatCore {
  words: SiteProfile = { ...FALLBACK_WORDS };
  session: Session | null = null;
  chatId = tabChatId();
  state = new ChatState();
  #socket: ChatSocket | null = null;
  #connection: { state: Connection; detail: string } = { state: "connecting", detail: "" };
  #problem: Problem | null = null;
  /** Stays until the page is reloaded: the relay refuses this page's address. */
  #blocked: Problem | null = null;
  #availability: Availability = "unknown";
  /** The replay of the first connection is history; events after `ready` are news. */
  #ready = false;
  #historyLoaded = false;
  #gateUntil: number | null = null;
  #gateMessage = "";
  #ticker: ReturnType<typeof setInterval> | undefined;
  #shownNotice = "";
  #shownAnswering: boolean | null = null;

  constructor(readonly api: RelayApi, readonly shell: ChatShell) {}

  /** Opens the stored session's chat, or the gate. */
  start(): void {
    this.session = loadSession();
    if (this.session) this.open();
    else this.shell.showGate("");
  }

  get availability(): Availability {
    return this.#availability;
  }

  /** Exchanges the access code for a session; false (and the gate told why) on failure. */
  async signIn(code: string): Promise<boolean> {
    if (!code) {
      this.shell.showGate("Enter the access code.");
      return false;
    }
    try {
      this.session = await this.api.createSession(code);
      saveSession(this.session);
      this.#gateUntil = null;
      this.open();
      return true;
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      const wait = error instanceof ApiError ? error.retryAfterSeconds : null;
      this.#gateMessage = wait ? beforeCountdown(text) : sentence(text);
      this.#gateUntil = wait ? Date.now() + wait * 1000 : null;
      this.#emitGate();
      this.#startTicker();
      return false;
    }
  }

  /** Opens the tab's chat: a fresh view, a socket resuming from nothing. */
  open(): void {
    if (!this.session) return this.#toGate("");
    this.#socket?.close();
    this.state = new ChatState();
    this.#problem = null;
    this.#ready = false;
    this.#historyLoaded = false;
    this.#shownNotice = "";
    this.#shownAnswering = null;
    this.shell.openChat();
    const chatId = this.chatId;
    this.#socket = new ChatSocket(
      this.api.socketUrl(chatId),
      this.session.token,
      () => this.state.lastSeq,
      {
        onEvent: (event) => this.#onEvent(event),
        onConnection: (next, detail) => {
          this.#connection = { state: next, detail };
          if (next === "live") {
            this.#ready = true;
            void this.#loadHistory(chatId);
          }
          this.#emit();
        },
        onRefused: (reason) => this.#refused(reason),
      },
    );
    this.#socket.start();
    this.#emit();
  }

  /** Starts a new chat in this tab. */
  newChat(): void {
    this.chatId = newChatId();
    this.open();
  }

  /** Sends a question; true once the relay stored it. */
  async send(text: string): Promise<boolean> {
    if (!this.session) {
      this.#toGate("");
      return false;
    }
    try {
      await this.api.postMessage(this.session.token, this.chatId, text);
      this.#problem = null;
      return true;
    } catch (error) {
      this.#fail(error);
      return false;
    } finally {
      this.#emit();
    }
  }

  /** Asks the worker to stop the answer being written. */
  async stop(): Promise<void> {
    if (!this.session) return;
    try {
      await this.api.cancel(this.session.token, this.chatId);
    } catch (error) {
      this.#fail(error);
      this.#emit();
    }
  }

  /**
   * Re-opens the failed turn of `messageId`. The row stays until the turn is queued again
   * (the state event says so); a turn that is not failed any more just loses its row.
   */
  async retry(messageId: string): Promise<boolean> {
    if (!this.session) return false;
    try {
      await this.api.retry(this.session.token, this.chatId, messageId);
      this.#problem = null;
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        this.state.failures.delete(messageId);
        this.shell.failure(messageId, null);
        return true;
      }
      this.#fail(error);
      return false;
    } finally {
      this.#emit();
    }
  }

  /** The health document was read (null: the relay could not be reached). */
  setHealth(health: HealthResponse | null): void {
    const next = availabilityOf(health);
    if (next === this.#availability) return;
    this.#availability = next;
    this.#emit();
  }

  /** The conversation as Markdown. */
  transcript(): string {
    return transcriptMarkdown(this.chatId, this.state.messages, {
      name: this.words.assistantName,
      failures: this.state.failures,
    });
  }

  #onEvent(event: Parameters<ChatState["apply"]>[0]): void {
    const change = this.state.apply(event);
    switch (change.kind) {
      case "message":
        this.shell.message(change.message, change.replacesLive, this.#ready);
        break;
      case "live":
        if (this.state.live) this.shell.live(this.state.live);
        break;
      case "state": {
        const { state } = change;
        if (state.state === "error") {
          this.shell.liveEnded();
          // A failed turn changes what the status chain says (the worker pushed it).
          this.shell.refreshHealth();
        } else if (this.#problem?.until === undefined) {
          // Something happened: a failure to read is old news. A wait the relay asked for
          // runs its course.
          this.#problem = null;
        }
        // Terra took (or answered) a question while the page thought it away: it is back.
        const working = state.state === "processing" || state.state === "responded";
        if (working && this.#availability === "away") {
          this.shell.refreshHealth();
        }
        if (change.failure) this.shell.failure(change.failure.messageId, change.failure.failure);
        break;
      }
    }
    this.#emit();
  }

  async #loadHistory(chatId: string): Promise<void> {
    if (this.#historyLoaded || !this.session) return;
    this.#historyLoaded = true;
    let messages;
    try {
      messages = await this.api.messages(this.session.token, chatId);
    } catch {
      return; // The live events still carry every failure from now on.
    }
    if (chatId !== this.chatId || !Array.isArray(messages)) return;
    for (const messageId of this.state.applyHistory(messages)) {
      this.shell.failure(messageId, this.state.failures.get(messageId)!);
    }
  }

  #refused(reason: string): void {
    // The relay refuses a page served from an address it does not list (1008 "Origin not
    // allowed"): the code is fine, so keep the session and say what is wrong.
    if (/origin/i.test(reason)) {
      this.#blocked = {
        text: `This page's address (${globalThis.location?.origin ?? "unknown"}) is not ` +
          "allowed to connect to the chat server. Please tell the site owner",
      };
      this.#connection = { state: "live", detail: "" };
      this.#emit();
      return;
    }
    forgetSession();
    this.#toGate(reason);
  }

  #toGate(message: string): void {
    this.#socket?.close();
    this.#socket = null;
    this.session = null;
    this.#gateMessage = message ? sentence(message) : "";
    this.#gateUntil = null;
    this.#emitGate();
  }

  #fail(error: unknown): void {
    if (error instanceof ApiError && error.needsCode) {
      forgetSession();
      return this.#toGate(error.message);
    }
    const text = error instanceof Error ? error.message : String(error);
    const wait = error instanceof ApiError ? error.retryAfterSeconds : null;
    this.#problem = wait ? { text, until: Date.now() + wait * 1000 } : { text };
    if (wait) this.#startTicker();
  }

  /** Once a second while a countdown runs, on the gate or in the notice. */
  #startTicker(): void {
    if (this.#ticker !== undefined) return;
    this.#ticker = setInterval(() => {
      const now = Date.now();
      if (this.#gateUntil !== null && !this.session) {
        this.#emitGate(); // at 0 it says "You can try again now."
        if (now >= this.#gateUntil) this.#gateUntil = null;
      }
      if (this.#problem?.until !== undefined && now >= this.#problem.until) this.#problem = null;
      this.#emit();
      if (this.#gateUntil === null && this.#problem?.until === undefined) {
        clearInterval(this.#ticker);
        this.#ticker = undefined;
      }
    }, TICK_MS);
  }

  #emitGate(): void {
    const left = this.#gateUntil === null
      ? undefined
      : Math.max(0, Math.ceil((this.#gateUntil - Date.now()) / 1000));
    this.shell.showGate(this.#gateMessage, left);
  }

  /** Tells the shell the notice and the Stop button's state, when they changed. */
  #emit(): void {
    if (!this.session) return;
    const notice = noticeFor({
      workerState: this.state.workerState,
      connection: this.#connection,
      problem: this.#problem ?? this.#blocked,
      availability: this.#availability,
      name: this.words.assistantName,
      offlineText: this.words.offlineText,
    });
    const key = notice ? `${notice.tone}|${notice.text}|${notice.countdown ?? ""}` : "";
    if (key !== this.#shownNotice) {
      this.#shownNotice = key;
      this.shell.notice(notice);
    }
    const answering = this.state.answering;
    if (answering !== this.#shownAnswering) {
      this.#shownAnswering = answering;
      this.shell.answering(answering);
    }
  }
}
