/**
 * The relay's HTTP API as the page uses it. Credentials travel in an `Authorization`
 * header, never in a URL. Every failure becomes an `ApiError` carrying the relay's plain
 * sentence, so the page can show it as it is.
 */
import type { ChatMessage, ErrorBody, HealthResponse, SiteProfile } from "../../lib/protocol.ts";

/** The session the relay issues for the access code. */
export interface Session {
  token: string;
  expiresAt: string;
  maxMessageLength?: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The session is gone (expired, revoked by a new access code): ask for the code again. */
  get needsCode(): boolean {
    return this.status === 401;
  }
}

/** Where the API lives: the page's `terrarium-api-base` meta, else `api/` beside the page. */
export function apiBase(doc: Document = document): URL {
  const configured = doc.querySelector<HTMLMetaElement>('meta[name="terrarium-api-base"]')
    ?.content.trim();
  const base = new URL(configured || "api", doc.baseURI);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return base;
}

export class RelayApi {
  constructor(readonly base: URL) {}

  /** The visitor socket's address for `chatId` (the token goes in its subprotocol header). */
  socketUrl(chatId: string): string {
    const url = new URL(`chat?chatId=${encodeURIComponent(chatId)}`, this.base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  createSession(accessCode: string): Promise<Session> {
    return this.#call("POST", "session", null, { accessCode });
  }

  postMessage(token: string, chatId: string, content: string): Promise<ChatMessage> {
    return this.#call("POST", `chat/${encodeURIComponent(chatId)}/messages`, token, { content });
  }

  cancel(token: string, chatId: string): Promise<unknown> {
    return this.#call("POST", `chat/${encodeURIComponent(chatId)}/cancel`, token, {});
  }

  /** The chat's stored messages: after a reload they carry what the replay may not (failures). */
  messages(token: string, chatId: string): Promise<ChatMessage[]> {
    return this.#call("GET", `chat/${encodeURIComponent(chatId)}/messages`, token);
  }

  /** Re-opens the failed turn of visitor message `messageId` (202; 409 when it did not fail). */
  retry(token: string, chatId: string, messageId: string): Promise<unknown> {
    const path = `chat/${encodeURIComponent(chatId)}/messages/${
      encodeURIComponent(messageId)
    }/retry`;
    return this.#call("POST", path, token, {});
  }

  /** The operator's words for the page (public). */
  site(): Promise<SiteProfile> {
    return this.#call("GET", "site", null);
  }

  health(): Promise<HealthResponse> {
    return this.#call("GET", "health", null);
  }

  async #call<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(new URL(path, this.base), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "The chat server cannot be reached. Check your connection.");
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON: a proxy's error page; the status says enough.
    }
    if (response.ok) return json as T;
    const error = json as Partial<ErrorBody> | null;
    const retryAfter = Number(response.headers.get("retry-after"));
    throw new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.error ?? `The chat server answered ${response.status} ${response.statusText}`.trim(),
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null,
    );
  }
}
