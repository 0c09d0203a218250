/**
 * What the page remembers: the session (in this browser, until it expires) and the chat id
 * (per tab, so a reload keeps the conversation and another tab starts its own).
 */
import type { Session } from "./api.ts";

let SESSION_KEY = "terrarium.session";
let CHAT_KEY = "terrarium.chatId";

/**
 * Keys of their own for the relay at `apiBase` (the widget: a host site may embed more than
 * one relay's chat, and its origin's storage is shared with the host's own scripts).
 */
export function scopeStorage(apiBase: string): void {
  SESSION_KEY = `terrarium.session:${apiBase}`;
  CHAT_KEY = `terrarium.chatId:${apiBase}`;
}

export function loadSession(nowMs = Date.now()): Session | null {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY) ?? "null") as Session | null;
    if (session && typeof session.token === "string" && Date.parse(session.expiresAt) > nowMs) {
      return session;
    }
  } catch {
    // A damaged entry is as good as none.
  }
  localStorage.removeItem(SESSION_KEY);
  return null;
}

export function saveSession(session: Session): void {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function forgetSession(): void {
  localStorage.removeItem(SESSION_KEY);
}

/** This tab's chat id, made on first use. */
export function chatId(): string {
  const existing = sessionStorage.getItem(CHAT_KEY);
  if (existing && /^[A-Za-z0-9_-]{1,64}$/.test(existing)) return existing;
  return newChatId();
}

/** Starts a new chat in this tab. */
export function newChatId(): string {
  const id = crypto.randomUUID();
  sessionStorage.setItem(CHAT_KEY, id);
  return id;
}
