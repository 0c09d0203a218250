/**
 * `WS /api/worker/updates`: the worker's one outbound socket. The relay pushes
 * `chat_activity` and `cancel`; the worker sends claims, lease renewals, chunks, states and
 * replies over it, so a streamed answer costs no HTTP request per token. Requests with a
 * `requestId` get an `ack`; a chunk gets an answer only when it fails.
 */
import {
  type AssistantChunkEvent,
  type WorkerClientEvent,
  WorkerClientEvent as WorkerClientEventSchema,
} from "../protocol.ts";
import { WORKER_ID_HEADER } from "./auth.ts";
import type { RelayDeps } from "./relay_deps.ts";
import { RelayError, storeFailure } from "./errors.ts";
import { isUpgrade, type RelayContext } from "./http.ts";
import { checkOrigin } from "./origin.ts";
import { chunkFrame } from "./chunk_frame.ts";
import { CLOSE_POLICY, CLOSE_TOO_BIG, closeQuietly, FrameBudget, frameTooLarge } from "./_ws.ts";
import type { WorkerPeer } from "./worker_hub.ts";

/**
 * Handles the worker socket handshake (already authenticated) and returns the 101 response.
 * A `notifyOnly` socket (the original worker's unsigned handshake under HMAC) only listens.
 */
export function workerSocket(c: RelayContext, deps: RelayDeps, notifyOnly = false): Response {
  const { config, metrics, log, workers, registry } = deps;
  if (!isUpgrade(c.req.raw)) {
    throw new RelayError("websocket_required", "This route expects a WebSocket upgrade");
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
    workers.add(peer);
    workers.send(peer, {
      type: "hello",
      leaseMs: config.turnLeaseMs,
      maxFrameBytes: maxFrame,
    });
    log.info("worker connected", { workerId });
    void registry.seen(workerId);
  };

  /**
   * A request the worker waits on gets a nack with the code, its HTTP status and whether
   * to retry (the same facts as over HTTP); anything else an `error` event.
   */
  const refuse = (requestId: string | undefined, error: RelayError, event?: WorkerClientEvent) =>
    requestId
      ? workers.send(peer, { type: "ack", requestId, ok: false, ...error.toAck() })
      : workers.send(peer, { type: "error", ...error.toBody(), ...refusedChunk(event) });

  socket.onmessage = async (message) => {
    if (frameTooLarge(message.data, maxFrame)) {
      return reject(CLOSE_TOO_BIG, "Frame too large", "frame_too_large");
    }
    const flooding = budget.take();
    if (flooding) return reject(CLOSE_POLICY, flooding, "frame_rate");
    let event: WorkerClientEvent;
    let json: unknown;
    try {
      json = JSON.parse(String(message.data));
      // Most frames are chunks: checked by hand, the same as the schema (`chunk_frame.ts`).
      event = chunkFrame(json) ?? WorkerClientEventSchema.parse(json);
    } catch {
      const junk = budget.bad();
      if (junk) return reject(CLOSE_POLICY, junk, "bad_frames");
      // A request the worker waits on gets its nack, so the worker does not wait it out.
      return refuse(
        requestIdOf(json),
        new RelayError("bad_event", "Unrecognised or malformed event"),
      );
    }
    const requestId = "requestId" in event ? event.requestId : undefined;
    if (notifyOnly && event.type !== "ping") {
      return refuse(
        requestId,
        new RelayError("not_signed", "This socket was not signed: send work over HTTP"),
      );
    }
    try {
      // A chunk taken at once waits for no promise (`ChunkPath.postNow()`, issue 18).
      const now = event.type === "chunk"
        ? deps.service.postChunkNow(event.chatId, event)
        : undefined;
      const result = now === undefined ? await handle(event, deps, workerId) : chunkResult(now);
      if (requestId) workers.send(peer, { type: "ack", requestId, ok: true, result });
      if (event.type === "ping") workers.send(peer, { type: "pong" });
    } catch (error) {
      if (!(error instanceof RelayError)) {
        log.error("worker event failed", { type: event.type, error });
      }
      const relayError = error instanceof RelayError ? error : storeFailure(error);
      refuse(requestId, relayError ?? new RelayError("internal", "Internal error"), event);
    }
    void registry.seen(workerId);
  };

  socket.onclose = () => {
    workers.remove(peer);
    log.info("worker disconnected", { workerId });
  };
  socket.onerror = () => {};
  return response;
}

/** Which chunk an error refuses, so the worker can send its text again (`chunk_gap`). */
function refusedChunk(event: WorkerClientEvent | undefined) {
  if (event?.type !== "chunk") return {};
  const { chatId, turnId, kind, offset } = event;
  return {
    chunk: { chatId, turnId: turnId ?? null, kind, ...(offset === undefined ? {} : { offset }) },
  };
}

/** What a chunk's ack would carry: its number and offset, or that it was ignored. */
function chunkResult(chunk: AssistantChunkEvent | null) {
  return chunk ? { seq: chunk.seq, offset: chunk.offset } : { ignored: true };
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
    case "chunk":
      return chunkResult(await service.postChunk(event.chatId, event));
    case "state":
      return await service.setWorkerState(event.chatId, event.state, event.detail ?? "");
    case "reply": {
      const { message, duplicate } = await service.postReply(event.chatId, event);
      return { ...message, duplicate };
    }
    case "fail":
      return await service.failTurn(event.turnId, event, event.chatId);
    case "status":
      await deps.registry.report(event.workerId ?? workerId, event);
      return {};
    case "ping":
      return {};
  }
}
