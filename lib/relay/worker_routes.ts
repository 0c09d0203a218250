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
import { chatIdParam, readBody, type RelayEnv } from "./http.ts";
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
    const body = await readBody(c, AgentChunkRequest);
    const event = await service.postChunk(chatId, body);
    // The original worker posts its final `done` after the reply, when the turn is closed;
    // the original page still gets it (our page needs nothing: the reply ended the turn).
    if (!event && body.done) service.lateDone(chatId);
    return c.json(
      event ? { ok: true, seq: event.seq, offset: event.offset } : { ok: true, ignored: true },
    );
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

/** An empty `done` chunk for legacy sockets only (it has no sequence number of its own). */

function turnIdParam(value: string | undefined): string {
  const result = Id.safeParse(value);
  if (!result.success) throw new RelayError("bad_turn_id", "Malformed turn id");
  return result.data;
}
