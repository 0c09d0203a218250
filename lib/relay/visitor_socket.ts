/**
 * `WS /api/chat?chatId=…&since=N`: a visitor's live view of one chat. Credentials come in
 * the handshake and nowhere else: `Authorization: Bearer <session token>`, from browsers the
 * subprotocols `terrarium.v1, terrarium.token.<session token>` (browsers cannot set headers
 * on a WebSocket; Kubernetes passes bearer tokens the same way), or a legacy `accessCode`
 * query. A handshake without valid credentials is a 401 and no socket: Deno assembles a
 * message of up to 64 MiB before `onmessage` can refuse it (denoland/deno#15809), so an
 * upgraded socket is a buffer its peer can fill, and only credential holders get one.
 * The socket then receives what it missed since `since`, a `ready` event, then live events;
 * a socket that came in with a legacy `accessCode` gets the original frames only
 * (`legacy_frames.ts`), as the original page expects.
 */
import { VisitorClientEvent } from "../protocol.ts";
import {
  CLOSE_INTERNAL,
  CLOSE_POLICY,
  CLOSE_TOO_BIG,
  CLOSE_TRY_LATER,
  closeQuietly,
  FrameBudget,
  frameTooLarge,
  sendBounded,
} from "./_ws.ts";
import { bearerToken } from "./auth.ts";
import type { RelayDeps } from "./relay_deps.ts";
import { RelayError } from "./errors.ts";
import { chatIdFrom, intQuery, isUpgrade, type RelayContext } from "./http.ts";
import { LegacyFrames } from "./legacy_frames.ts";
import { checkOrigin } from "./origin.ts";
import type { SocketLease } from "./redis/global_limits.ts";
import type { VisitorPeer } from "./visitor_hub.ts";

/** The subprotocol the relay speaks; the page offers it beside its token. */
export const VISITOR_PROTOCOL = "terrarium.v1";
/** Prefix of the subprotocol that carries a session token (base64url.base64url: tchars). */
export const TOKEN_PROTOCOL_PREFIX = "terrarium.token.";

/** The subprotocols a handshake offers (`Sec-WebSocket-Protocol`, comma-separated). */
function offeredProtocols(c: RelayContext): string[] {
  const header = c.req.header("sec-websocket-protocol") ?? "";
  return header.split(",").map((p) => p.trim()).filter((p) => p !== "");
}

/**
 * Checks the handshake's credentials; throws a 401 `RelayError` without them. A bearer
 * header wins over a token subprotocol, which wins over a legacy access code.
 */
async function authenticate(c: RelayContext, deps: RelayDeps, offered: string[]): Promise<void> {
  const tokenProtocol = offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
  if (tokenProtocol !== undefined && bearerToken(c.req.header("authorization")) === null) {
    if (await deps.auth.sessions.verify(tokenProtocol.slice(TOKEN_PROTOCOL_PREFIX.length))) return;
    throw new RelayError("bad_token", "Your session has expired; enter the access code again");
  }
  await deps.auth.visitor(c);
}

/** Handles the visitor socket handshake and returns the 101 response (or throws a refusal). */
export async function visitorSocket(c: RelayContext, deps: RelayDeps): Promise<Response> {
  const { config, service, metrics } = deps;
  if (!isUpgrade(c.req.raw)) {
    throw new RelayError("websocket_required", "This route expects a WebSocket upgrade");
  }
  const chatId = chatIdFrom(c.req.query("chatId"));
  const since = intQuery(c, "since", 0);
  const offered = offeredProtocols(c);
  // The original page's way in: it must get the original frames only (legacy_frames.ts).
  const legacy = !bearerToken(c.req.header("authorization")) &&
    !offered.some((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX)) && !!c.req.query("accessCode");
  try {
    await authenticate(c, deps, offered);
  } catch (error) {
    metrics.inc("terrarium_ws_rejected_total", { reason: "unauthenticated" });
    throw error;
  }
  // Judged after the credentials, as a close the page can read: a browser cannot read the
  // status of a refused handshake. Such a socket is authenticated and counted in its slot.
  // (Read before the upgrade: the request's headers are gone after it.)
  const originOk = checkOrigin(c.req.raw.headers, config, deps.log);
  const ip = c.get("clientIp");
  const visitors = deps.visitors;
  let socket: WebSocket | null = null;
  // Counted from here on, before the upgrade, so half-open sockets cannot pile up.
  const key = c.get("clientKey");
  let lease: SocketLease | null = null;
  let slot;
  try {
    slot = visitors.slots.reserve(key, () => {
      void lease?.release();
      if (socket) closeQuietly(socket, CLOSE_TRY_LATER, "Handshake took too long");
    });
  } catch (error) {
    metrics.inc("terrarium_ws_rejected_total", { reason: "socket_limit" });
    throw error;
  }
  // This relay's slot first (cheap, and its cap holds whatever Redis says), then the key's
  // count on all relays (Redis; nothing on Deno KV, where the slot is the whole count).
  try {
    lease = await deps.limits.sockets.acquire(key);
  } catch (error) {
    slot.release();
    throw error;
  }
  if (!lease) {
    slot.release();
    metrics.inc("terrarium_ws_rejected_total", { reason: "socket_limit" });
    throw new RelayError(
      "too_many_sockets",
      "Too many open sockets from this address; close a tab and try again",
      { retryAfterSeconds: 5 },
    );
  }
  const held = lease;
  let upgrade;
  try {
    upgrade = Deno.upgradeWebSocket(c.req.raw, {
      idleTimeout: config.wsIdleTimeoutSeconds || undefined,
      protocol: offered.includes(VISITOR_PROTOCOL) ? VISITOR_PROTOCOL : undefined,
    });
  } catch (error) {
    slot.release();
    void held.release();
    throw error;
  }
  socket = upgrade.socket;
  const ws = socket;
  const budget = new FrameBudget(
    config.visitorWsFramesPerSecond,
    4 * config.visitorWsFramesPerSecond,
  );
  const cap = config.maxSocketBufferBytes;
  let peer: VisitorPeer | null = null;

  const reject = (code: number, reason: string, metric: string) => {
    metrics.inc("terrarium_ws_rejected_total", { reason: metric });
    closeQuietly(ws, code, reason);
  };

  const attach = () => {
    const full = visitors.refusal(chatId);
    if (full) return reject(CLOSE_TRY_LATER, full, "socket_limit");
    const attached = visitors.attach(chatId, ws, ip, legacy ? new LegacyFrames() : null);
    peer = attached;
    service.replay(chatId, since, (events) => {
      let sent = since;
      for (const event of events) {
        const data = attached.legacy ? attached.legacy.replayFrame(event) : JSON.stringify(event);
        if (data !== null && !visitors.send(attached, data)) {
          visitors.detach(chatId, attached);
          return metrics.inc("terrarium_ws_rejected_total", { reason: "replay_too_slow" });
        }
        sent = Math.max(sent, event.seq);
      }
      if (!legacy) visitors.send(attached, JSON.stringify({ type: "ready", chatId, seq: sent }));
      visitors.goLive(attached, sent);
    }).catch((error) => {
      deps.log.error("replay failed", { chatId, error });
      reject(CLOSE_INTERNAL, "Replay failed; reconnect", "replay_failed");
    });
  };

  // Errors and pongs go through the same cap as chat events: a peer that sends and never
  // reads gets closed (1013), not an ever-growing queue of answers.
  const answer = (data: string) => {
    if (!sendBounded(ws, data, cap)) {
      metrics.inc("terrarium_ws_rejected_total", { reason: "too_slow" });
    }
  };

  ws.onopen = () => {
    slot.opened();
    if (!originOk) return reject(CLOSE_POLICY, "Origin not allowed", "handshake");
    attach();
  };

  ws.onmessage = (message) => {
    if (frameTooLarge(message.data, config.maxWsFrameBytes)) {
      return reject(CLOSE_TOO_BIG, "Frame too large", "frame_too_large");
    }
    const flooding = budget.take();
    if (flooding) return reject(CLOSE_POLICY, flooding, "frame_rate");
    let event: VisitorClientEvent;
    try {
      event = VisitorClientEvent.parse(JSON.parse(String(message.data)));
    } catch {
      const junk = budget.bad();
      if (junk) return reject(CLOSE_POLICY, junk, "bad_frames");
      const bad = new RelayError("bad_event", "Unrecognised event");
      return answer(JSON.stringify({ type: "error", ...bad.toBody() }));
    }
    if (event.type === "ping") answer('{"type":"pong"}');
  };

  ws.onclose = () => {
    slot.release();
    void held.release();
    if (peer) visitors.detach(chatId, peer);
  };
  ws.onerror = () => {};
  return upgrade.response;
}
