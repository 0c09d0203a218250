/**
 * `WS /api/worker/updates`: the worker's one outbound socket. The relay pushes
 * `chat_activity` and `cancel`; the worker sends claims, lease renewals, chunks, states and
 * replies over it, so a streamed answer costs no HTTP request per token. Requests with a
 * `requestId` get an `ack`; a chunk gets an answer only when it fails.
 */
import {
  type WorkerClientEvent,
  WorkerClientEvent as WorkerClientEventSchema,
} from "../protocol.ts";
import { WORKER_ID_HEADER } from "./auth.ts";
import type { RelayDeps } from "./deps.ts";
import { RelayError, storeFailure } from "./errors.ts";
import { isUpgrade, type RelayContext } from "./http.ts";
import { checkOrigin } from "./origin.ts";
import { CLOSE_POLICY, CLOSE_TOO_BIG, closeQuietly, FrameBudget, frameSize } from "./_ws.ts";
import type { WorkerPeer } from "./worker_hub.ts";

/**
 * Handles the worker socket handshake (already authenticated) and returns the 101 response.
 * A `notifyOnly` socket (the original worker's unsigned handshake under HMAC) only listens.
 */
export function workerSocket(c: RelayContext, deps: RelayDeps, notifyOnly = false): Response {
  const { config, service, metrics, log } = deps;
  if (!isUpgrade(c.req.raw)) {
    throw new RelayError(400, "websocket_required", "This route expects a WebSocket upgrade");
  }
  const originOk = checkOrigin(c.req.raw.headers, config, log);
  const workerId = c.req.query("workerId")?.slice(0, 80) || c.req.header(WORKER_ID_HEADER) ||
    c.get("workerId") || "default";
  // Worker frames carry whole replies, so they may be as large as an HTTP body.
  const maxFrame = Math.max(config.maxWsFrameBytes, config.bodySizeLimitBytes);
  const { socket, response } = Deno.upgradeWebSocket(c.req.raw, {
    idleTimeout: config.wsIdleTimeoutSeconds || undefined,
  });
  const peer: WorkerPeer = { socket, workerId };
  const perSecond = config.workerWsFramesPerSecond;
  const budget = new FrameBudget(perSecond, 4 * perSecond);
  const reject = (code: number, reason: string, metric: string) => {
    metrics.inc("terrarium_ws_rejected_total", { reason: metric });
    closeQuietly(socket, code, reason);
  };

  socket.onopen = () => {
    if (!originOk) return reject(CLOSE_POLICY, "Origin not allowed", "handshake");
    service.workers.add(peer);
    service.workers.send(peer, {
      type: "hello",
      leaseMs: config.turnLeaseMs,
      maxFrameBytes: maxFrame,
    });
    log.info("worker connected", { workerId });
    void service.registry.seen(workerId);
  };

  socket.onmessage = async (message) => {
    if (frameSize(message.data) > maxFrame) {
      return reject(CLOSE_TOO_BIG, "Frame too large", "frame_too_large");
    }
    const flooding = budget.take();
    if (flooding) return reject(CLOSE_POLICY, flooding, "frame_rate");
    let event: WorkerClientEvent;
    let json: unknown;
    try {
      json = JSON.parse(String(message.data));
      event = WorkerClientEventSchema.parse(json);
    } catch {
      const junk = budget.bad();
      if (junk) return reject(CLOSE_POLICY, junk, "bad_frames");
      const bad = { code: "bad_event", error: "Unrecognised or malformed event" };
      // A request the worker waits on gets its nack, so the worker does not wait it out.
      const requestId = requestIdOf(json);
      if (requestId) {
        return service.workers.send(peer, { type: "ack", requestId, ok: false, ...bad });
      }
      return service.workers.send(peer, { type: "error", ...bad });
    }
    const requestId = "requestId" in event ? event.requestId : undefined;
    if (notifyOnly && event.type !== "ping") {
      const body = { code: "not_signed", error: "This socket was not signed: send work over HTTP" };
      return service.workers.send(
        peer,
        requestId ? { type: "ack", requestId, ok: false, ...body } : { type: "error", ...body },
      );
    }
    try {
      const result = await handle(event, deps, workerId);
      if (requestId) service.workers.send(peer, { type: "ack", requestId, ok: true, result });
      if (event.type === "ping") service.workers.send(peer, { type: "pong" });
    } catch (error) {
      if (!(error instanceof RelayError)) {
        log.error("worker event failed", { type: event.type, error });
      }
      const relayError = error instanceof RelayError ? error : storeFailure(error);
      const body = relayError?.toBody() ?? { error: "Internal error", code: "internal" };
      if (requestId) service.workers.send(peer, { type: "ack", requestId, ok: false, ...body });
      else service.workers.send(peer, { type: "error", ...body });
    }
    void service.registry.seen(workerId);
  };

  socket.onclose = () => {
    service.workers.remove(peer);
    log.info("worker disconnected", { workerId });
  };
  socket.onerror = () => {};
  return response;
}

/** The `requestId` of a frame that failed validation, when it is a usable one. */
function requestIdOf(json: unknown): string | undefined {
  if (typeof json !== "object" || json === null || !("requestId" in json)) return undefined;
  const { requestId } = json;
  return typeof requestId === "string" && requestId.length >= 1 && requestId.length <= 80
    ? requestId
    : undefined;
}

async function handle(
  event: WorkerClientEvent,
  deps: RelayDeps,
  workerId: string,
): Promise<unknown> {
  const { service } = deps;
  switch (event.type) {
    case "claim":
      return { turn: await service.claim(event.workerId, event.chatId) };
    case "renew":
      return await service.renew(event.turnId, event.leaseId);
    case "release":
      await service.release(event.turnId, event.leaseId);
      return {};
    case "chunk": {
      const chunk = await service.postChunk(event.chatId, event);
      return chunk ? { seq: chunk.seq, offset: chunk.offset } : { ignored: true };
    }
    case "state":
      return await service.setWorkerState(event.chatId, event.state, event.detail ?? "");
    case "reply": {
      const { message, duplicate } = await service.postReply(event.chatId, event);
      return { ...message, duplicate };
    }
    case "fail":
      return await service.failTurn(event.turnId, event, event.chatId);
    case "status":
      await service.registry.report(event.workerId ?? workerId, event);
      return {};
    case "ping":
      return {};
  }
}
