/** Visitor HTTP routes (SPEC §3): session, messages, worker state, cancel, health. */
import { Hono } from "hono";
import { Id, SessionRequest, VisitorMessageRequest } from "../protocol.ts";
import type { RelayDeps } from "./relay_deps.ts";
import { RelayError } from "./errors.ts";
import { withStoreHealth } from "./redis/store_health.ts";
import {
  chatIdParam,
  intQuery,
  parseWith,
  readBody,
  type RelayContext,
  type RelayEnv,
} from "./http.ts";

const RetryRequest = VisitorMessageRequest.pick({ accessCode: true });

/** Throws 429 `rate_limited` when a limiter asked to `wait` seconds. */
function limit(wait: number, what: string): void {
  if (wait > 0) {
    throw new RelayError("rate_limited", `Too many ${what}; slow down.`, {
      retryAfterSeconds: wait,
    });
  }
}

export function visitorRoutes(deps: RelayDeps): Hono<RelayEnv> {
  const { auth, service, config } = deps;
  const { ip: ipLimiter, chat: chatLimiter } = deps.limits;
  const app = new Hono<RelayEnv>();

  /** Visitors and workers may both read a chat; a service-token header makes it a worker. */
  async function visitorOrWorker(c: RelayContext): Promise<void> {
    if (auth.claimsWorker(c)) await auth.worker(c);
    else await auth.visitor(c);
  }

  app.post("/session", async (c) => {
    limit(await ipLimiter.hit(c.get("clientKey")), "requests");
    const body = await readBody(c, SessionRequest);
    await auth.guard.check(c.get("clientKey"), body.accessCode);
    // The page learns the limits it should enforce before sending.
    return c.json({ ...await auth.sessions.issue(), maxMessageLength: config.maxMessageLength });
  });

  app.get("/health", async (c) => {
    const health = await deps.registry.currentHealth(deps.frontendServed);
    return c.json(deps.storeHealth ? withStoreHealth(health, deps.storeHealth()) : health);
  });

  app.get("/chat/:chatId/messages", async (c) => {
    const chatId = chatIdParam(c);
    await visitorOrWorker(c);
    const after = intQuery(c, "after", 0);
    const limitCount = Math.min(intQuery(c, "limit", 10_000), 10_000);
    return c.json(await service.listMessages(chatId, after, limitCount));
  });

  app.post("/chat/:chatId/messages", async (c) => {
    const chatId = chatIdParam(c);
    const body = await readBody(c, VisitorMessageRequest);
    await auth.visitor(c, body.accessCode);
    limit(await ipLimiter.hit(c.get("clientKey")), "messages from your network");
    limit(await chatLimiter.hit(chatId), "messages in this chat");
    const content = body.content.trim();
    if (!content) throw new RelayError("empty_message", "The message is empty.");
    if (content.length > config.maxMessageLength) {
      throw new RelayError(
        "message_too_long",
        `The message is longer than ${config.maxMessageLength} characters.`,
      );
    }
    // The raw IP goes into the chat record (the admin export shows it); limits use the key.
    const message = await service.postVisitorMessage(chatId, content, {
      ip: c.get("clientIp"),
      key: c.get("clientKey"),
      userAgent: c.req.header("user-agent") ?? "",
    });
    return c.json(message, 201);
  });

  // The gate shows the site words before any code is entered, so this needs no auth; a
  // worker may publish new words at any time, so caches must ask again.
  app.get("/site", (c) => {
    c.header("cache-control", "no-cache");
    return c.json(service.siteProfile());
  });

  app.post("/chat/:chatId/messages/:messageId/retry", async (c) => {
    const chatId = chatIdParam(c);
    // A bearer-token retry may have no body at all; a legacy one carries `{accessCode}`.
    const text = await c.req.text();
    let json: unknown = {};
    try {
      if (text.trim()) json = JSON.parse(text);
    } catch {
      throw new RelayError("malformed_json", "The request body is not valid JSON.");
    }
    const body = parseWith(RetryRequest, json);
    await auth.visitor(c, body.accessCode);
    limit(await ipLimiter.hit(c.get("clientKey")), "messages from your network");
    limit(await chatLimiter.hit(chatId), "messages in this chat");
    const messageId = Id.safeParse(c.req.param("messageId"));
    if (!messageId.success) {
      throw new RelayError("unknown_message", "No such message in this chat.");
    }
    await service.retry(chatId, messageId.data, c.get("clientKey"));
    return c.json({ ok: true }, 202);
  });

  app.get("/chat/:chatId/worker-state", async (c) => {
    const chatId = chatIdParam(c);
    await visitorOrWorker(c);
    return c.json(await service.getWorkerState(chatId));
  });

  app.post("/chat/:chatId/cancel", async (c) => {
    const chatId = chatIdParam(c);
    await auth.visitor(c);
    limit(await ipLimiter.hit(c.get("clientKey")), "requests");
    return c.json(await service.cancel(chatId));
  });

  return app;
}
