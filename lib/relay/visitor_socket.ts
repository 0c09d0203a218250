/**
 * `WS /api/chat?chatId=…&since=N`: a visitor's live view of one chat. Credentials come in
 * the handshake (`Authorization: Bearer`, or a legacy `accessCode` query) or, from
 * browsers, as the first frame `{type:"auth", token}` so no secret sits in a URL. After
 * authentication the socket receives what it missed since `since`, a `ready` event, then
 * live events.
 */
import { VisitorClientEvent } from "../protocol.ts";
import { bearerToken } from "./auth.ts";
import type { RelayDeps } from "./deps.ts";
import { RelayError } from "./errors.ts";
import { chatIdFrom, intQuery, isUpgrade, type RelayContext } from "./http.ts";
import { LegacyFrames } from "./legacy_frames.ts";
import { checkOrigin } from "./origin.ts";
import { closeQuietly } from "./visitor_hub.ts";

/** RFC 6455 §7.4.1 close codes. */
export const CLOSE_POLICY = 1008;
export const CLOSE_TOO_BIG = 1009;
export const CLOSE_GOING_AWAY = 1001;
const CLOSE_TRY_LATER = 1013;
/** How long an unauthenticated socket may stay open waiting for its `auth` frame. */
const AUTH_TIMEOUT_MS = 10_000;

/** Size of a WebSocket message in bytes (text as the UTF-8 it arrived in). */
export function frameSize(data: unknown): number {
  if (typeof data === "string") return utf8Length(data);
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (data instanceof Blob) return data.size;
  return 0;
}

/** UTF-8 length of `text` without encoding it (a surrogate pair is 4 bytes). */
function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    bytes += unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 1 : 2;
  }
  return bytes;
}

/** Handles the visitor socket handshake and returns the 101 response. */
export async function visitorSocket(c: RelayContext, deps: RelayDeps): Promise<Response> {
  const { config, service, auth, metrics } = deps;
  if (!isUpgrade(c.req.raw)) {
    throw new RelayError(400, "websocket_required", "This route expects a WebSocket upgrade");
  }
  const chatId = chatIdFrom(c.req.query("chatId"));
  let since = intQuery(c, "since", 0);
  const ip = c.get("clientIp");
  // The original page's way in: it must get the original frames only (legacy_frames.ts).
  const legacy = !bearerToken(c.req.header("authorization")) && !!c.req.query("accessCode");

  // Decide everything that can be decided before the upgrade; refusals are close codes,
  // because a browser cannot read the status of a failed handshake.
  let refusal: { code: number; reason: string } | null = null;
  let authenticated = false;
  if (!checkOrigin(c.req.raw.headers, config, deps.log)) {
    refusal = { code: CLOSE_POLICY, reason: "Origin not allowed" };
  } else if (bearerToken(c.req.header("authorization")) || c.req.query("accessCode")) {
    try {
      await auth.visitor(c);
      authenticated = true;
    } catch (error) {
      const reason = error instanceof RelayError ? error.message : "Not authenticated";
      refusal = { code: CLOSE_POLICY, reason };
    }
  }
  const { socket, response } = Deno.upgradeWebSocket(c.req.raw, {
    idleTimeout: config.wsIdleTimeoutSeconds || undefined,
  });
  let peer: ReturnType<typeof service.visitors.attach> | null = null;
  let authTimer: ReturnType<typeof setTimeout> | null = null;

  const reject = (code: number, reason: string, metric: string) => {
    metrics.inc("terrarium_ws_rejected_total", { reason: metric });
    closeQuietly(socket, code, reason.slice(0, 120));
  };

  const attach = () => {
    const full = service.visitors.refusal(chatId, ip);
    if (full) return reject(CLOSE_TRY_LATER, full, "socket_limit");
    const attached = service.visitors.attach(
      chatId,
      socket,
      ip,
      legacy ? new LegacyFrames() : null,
    );
    peer = attached;
    service.replay(chatId, since, (events) => {
      let sent = since;
      for (const event of events) {
        const data = attached.legacy ? attached.legacy.replayFrame(event) : JSON.stringify(event);
        if (data !== null && !service.visitors.send(attached, data)) {
          service.visitors.detach(chatId, attached);
          return reject(CLOSE_TRY_LATER, "Too slow: reconnect to resume", "replay_too_slow");
        }
        sent = Math.max(sent, event.seq);
      }
      if (!legacy) {
        service.visitors.send(attached, JSON.stringify({ type: "ready", chatId, seq: sent }));
      }
      service.visitors.goLive(attached, sent);
    }).catch((error) => {
      deps.log.error("replay failed", { chatId, error });
      reject(1011, "Replay failed; reconnect", "replay_failed");
    });
  };

  socket.onopen = () => {
    if (refusal) return reject(refusal.code, refusal.reason, "handshake");
    if (authenticated) return attach();
    authTimer = setTimeout(
      () => reject(CLOSE_POLICY, "Authentication required", "auth_timeout"),
      AUTH_TIMEOUT_MS,
    );
  };

  socket.onmessage = async (message) => {
    if (frameSize(message.data) > config.maxWsFrameBytes) {
      return reject(CLOSE_TOO_BIG, "Frame too large", "frame_too_large");
    }
    let event;
    try {
      event = VisitorClientEvent.parse(JSON.parse(String(message.data)));
    } catch {
      return sendError(socket, "bad_event", "Unrecognised event");
    }
    if (event.type === "ping") {
      if (socket.readyState === WebSocket.OPEN) socket.send('{"type":"pong"}');
      return;
    }
    if (authenticated) return sendError(socket, "already_authenticated", "Already authenticated");
    if (!(await auth.sessions.verify(event.token))) {
      return reject(
        CLOSE_POLICY,
        "Your session has expired; enter the access code again",
        "bad_token",
      );
    }
    authenticated = true;
    if (authTimer !== null) clearTimeout(authTimer);
    if (event.since !== undefined) since = event.since;
    attach();
  };

  socket.onclose = () => {
    if (authTimer !== null) clearTimeout(authTimer);
    if (peer) service.visitors.detach(chatId, peer);
  };
  socket.onerror = () => {};
  return response;
}

function sendError(socket: WebSocket, code: string, error: string): void {
  if (socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "error", code, error }));
  }
}
