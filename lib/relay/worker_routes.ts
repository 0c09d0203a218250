/** Worker HTTP routes (SPEC §3), all behind the service token (and HMAC when enabled). */
import { Hono } from "hono";
import {
  AgentChunkRequest,
  AgentReplyRequest,
  ClaimRequest,
  LeaseRequest,
  SiteProfile,
  TurnFailRequest,
  WorkerStateRequest,
  WorkerStatusRequest,
} from "../protocol.ts";
import type { RelayDeps } from "./relay_deps.ts";
import { chatIdFrom, chatIdParam, parseBody, readBody, type RelayEnv } from "./http.ts";
import { Id } from "../protocol.ts";
import { RelayError } from "./errors.ts";

export function workerRoutes(deps: RelayDeps): Hono<RelayEnv> {
  const { auth, service } = deps;
  const app = new Hono<RelayEnv>();
  const requireWorker = auth.requireWorker();

  app.use("/chats/*", requireWorker);
  app.use("/worker/*", requireWorker);
  app.use("/chat/:chatId/agent", requireWorker);
  app.use("/chat/:chatId/agent-chunk", requireWorker);
  app.on("POST", "/chat/:chatId/worker-state", requireWorker);
  app.use("*", async function heartbeat(c, next) {
    await next();
    const workerId = c.get("workerId");
    if (workerId) await deps.registry.seen(workerId);
  });

  app.get("/chats/open", (c) => c.json({ chatIds: service.openChats() }));

  app.post("/chat/:chatId/agent", async (c) => {
    const chatId = chatIdParam(c);
    const body = await readBody(c, AgentReplyRequest);
    const { message, duplicate } = await service.postReply(chatId, body);
    return c.json({ ...message, duplicate }, duplicate ? 200 : 201);
  });

  app.post("/chat/:chatId/agent-chunk", async (c) => {
    const chatId = chatIdParam(c);
    return c.json(await postChunk(deps, chatId, await readBody(c, AgentChunkRequest)));
  });

  app.post("/chat/:chatId/worker-state", async (c) => {
    const chatId = chatIdParam(c);
    const body = await readBody(c, WorkerStateRequest);
    return c.json(await service.setWorkerState(chatId, body.state, body.detail ?? ""));
  });

  app.post("/worker/status", async (c) => {
    const body = await readBody(c, WorkerStatusRequest);
    await deps.registry.report(body.workerId ?? c.get("workerId"), body);
    return c.json({ ok: true });
  });

  app.post("/worker/turns/claim", async (c) => {
    const body = await readBody(c, ClaimRequest);
    return c.json({ turn: await service.claim(body.workerId, body.chatId) });
  });

  app.post("/worker/turns/:turnId/renew", async (c) => {
    const body = await readBody(c, LeaseRequest);
    return c.json(await service.renew(turnIdParam(c.req.param("turnId")), body.leaseId));
  });

  app.post("/worker/turns/:turnId/release", async (c) => {
    const body = await readBody(c, LeaseRequest);
    await service.release(turnIdParam(c.req.param("turnId")), body.leaseId);
    return c.json({ ok: true });
  });

  app.post("/worker/turns/:turnId/fail", async (c) => {
    const body = await readBody(c, TurnFailRequest);
    return c.json(await service.failTurn(turnIdParam(c.req.param("turnId")), body));
  });

  app.put("/worker/site", async (c) => {
    await service.publishSite(await readBody(c, SiteProfile));
    return c.json({ ok: true });
  });

  return app;
}

/** `POST /agent-chunk`'s work once the body is read, whichever way the request came in. */
async function postChunk(
  deps: RelayDeps,
  chatId: string,
  body: AgentChunkRequest,
): Promise<{ ok: true; seq: number; offset: number } | { ok: true; ignored: true }> {
  const event = await deps.service.postChunk(chatId, body);
  // The original worker posts its final `done` after the reply, when the turn is closed;
  // the original page still gets it (our page needs nothing: the reply ended the turn).
  if (!event && body.done) deps.service.lateDone(chatId);
  return event ? { ok: true, seq: event.seq, offset: event.offset } : { ok: true, ignored: true };
}

const CHUNK_SUFFIX = "/agent-chunk";

/** What the app's own middleware does around a route, for a route served beside it. */
export interface RouteFrame {
  /** Turns a thrown error into the response the app's `onError` gives. */
  errorResponse(error: unknown, method: string, path: string): Response;
  /** The app-wide middleware's part after the handler: security headers, request counters. */
  finish(res: Response, path: string, startedAt: number): Promise<Response>;
}

/**
 * `POST …/api/chat/:chatId/agent-chunk` (the original worker's stream, and ours while its
 * socket is down: one request per token) answered without Hono's router and middleware
 * chain, which cost about half of the relay's CPU per chunk on this route (issue 18,
 * docs/BENCHMARKS.md). The same checks run in the chain's order: body limit (by
 * `Content-Length`), service token, chat id, JSON and schema, then the chunk, the worker's
 * heartbeat, security headers and request counters (`frame`). Requests it does not take
 * (`handles()` is false) go through the app as before: under `HMAC_ENABLED` (the signature
 * covers the body), with `ALLOWED_ORIGINS` (CORS), without `Content-Length` or with
 * `Transfer-Encoding`, and for any path that is not plainly this route (encoded characters,
 * another method).
 */
export function agentChunkRoute(deps: RelayDeps, frame: RouteFrame): {
  handles(req: Request): boolean;
  serve(req: Request): Promise<Response>;
} | null {
  const { config, auth, registry } = deps;
  if (config.hmacEnabled || config.allowedOrigins.length > 0) return null;
  const prefixes = [...new Set(["", config.basePath])].map((base) => `${base}/api/chat/`);
  const chatIdOf = (path: string): string | null => {
    if (!path.endsWith(CHUNK_SUFFIX)) return null;
    for (const prefix of prefixes) {
      if (!path.startsWith(prefix)) continue;
      const id = path.slice(prefix.length, path.length - CHUNK_SUFFIX.length);
      if (id !== "" && !id.includes("/") && !id.includes("%")) return id;
    }
    return null;
  };
  const pathOf = (url: string): string => {
    const start = url.indexOf("/", url.indexOf(":") + 3);
    const end = url.indexOf("?", start);
    return end < 0 ? url.slice(start) : url.slice(start, end);
  };
  return {
    handles(req) {
      // No `req.body` here: reading it makes the body's stream (5 % of this route's profile);
      // a request without a body has no Content-Length and goes through Hono.
      if (req.method !== "POST") return false;
      if (!req.headers.has("content-length") || req.headers.has("transfer-encoding")) return false;
      return chatIdOf(pathOf(req.url)) !== null;
    },
    async serve(req) {
      const startedAt = performance.now();
      const path = pathOf(req.url);
      let res: Response;
      try {
        res = await answer(req, chatIdOf(path)!);
      } catch (error) {
        res = frame.errorResponse(error, req.method, path);
      }
      return await frame.finish(res, path, startedAt);
    },
  };

  async function answer(req: Request, rawChatId: string): Promise<Response> {
    // As hono/body-limit with a Content-Length: judged by the header (Deno reads no more).
    if (parseInt(req.headers.get("content-length") || "0", 10) > config.bodySizeLimitBytes) {
      throw new RelayError(
        "body_too_large",
        `The request body is larger than ${config.bodySizeLimitBytes} bytes`,
      );
    }
    const workerId = auth.unsignedWorker(req.headers);
    try {
      const chatId = chatIdFrom(rawChatId);
      const body = parseBody(await req.text(), AgentChunkRequest);
      return Response.json(await postChunk(deps, chatId, body));
    } catch (error) {
      return frame.errorResponse(error, req.method, pathOf(req.url));
    } finally {
      // The heartbeat middleware's part: after the handler, whatever it answered.
      await registry.seen(workerId);
    }
  }
}

function turnIdParam(value: string | undefined): string {
  const result = Id.safeParse(value);
  if (!result.success) throw new RelayError("bad_turn_id", "Malformed turn id");
  return result.data;
}
