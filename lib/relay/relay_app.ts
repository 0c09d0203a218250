/**
 * The relay's Hono app: the API under `/api` and `${BASE_PATH}/api`, `/healthz`, `/metrics`
 * and the page. Errors become `{error, code}` JSON with the right status; nothing a client
 * sends can make a handler throw past here.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { adminRoutes } from "./admin_routes.ts";
import { clientIpResolver } from "./client_ip.ts";
import { clientKey } from "./client_key.ts";
import type { RelayDeps } from "./relay_deps.ts";
import { RelayError, storeFailure } from "./errors.ts";
import { isUpgrade, type RelayContext, type RelayEnv } from "./http.ts";
import { metricsSnapshot } from "./metrics_snapshot.ts";
import { decodePagePath, StaticFiles } from "./static_files.ts";
import { visitorRoutes } from "./visitor_routes.ts";
import { visitorSocket } from "./visitor_socket.ts";
import { agentChunkRoute, workerRoutes } from "./worker_routes.ts";
import { workerSocket } from "./worker_socket.ts";

/** Route groups for the request counter, so labels stay few. */
function routeGroup(path: string, basePath: string): string {
  const p = basePath && path.startsWith(basePath) ? path.slice(basePath.length) : path;
  if (p.startsWith("/api/worker") || p.startsWith("/api/chats") || /\/agent(-chunk)?$/.test(p)) {
    return "worker";
  }
  if (p.startsWith("/api/admin")) return "admin";
  if (p === "/api/metrics") return "metrics";
  if (p.startsWith("/api/")) return "visitor";
  return p === "/metrics" || p === "/healthz" ? p.slice(1) : "page";
}

/**
 * Builds the app. `options.chunkRoute: false` serves `POST /agent-chunk` through Hono too
 * (tests compare both ways).
 */
export function relayApp(
  deps: RelayDeps,
  options: { chunkRoute?: boolean } = {},
): Hono<RelayEnv> {
  const { config, metrics, log, auth } = deps;
  const app = new Hono<RelayEnv>();
  // A handler that states a header itself keeps it (the widget's files: CORP cross-origin).
  const headers = secureHeaders({ crossOriginResourcePolicy: "same-site", overwrite: false });
  const resolveClientIp = clientIpResolver(config, log);
  // The request counter's label sets, resolved once each (route groups × statuses: few).
  const requestCounters = new Map<string, { add(by?: number): void }>();
  const countRequest = (group: string, status: number) => {
    const key = `${group} ${status}`;
    let counter = requestCounters.get(key);
    if (!counter) {
      counter = metrics.counterAt("terrarium_http_requests_total", {
        group,
        status: String(status),
      });
      requestCounters.set(key, counter);
    }
    counter.add();
  };
  const requestSeconds = metrics.counterAt("terrarium_http_request_seconds_total");

  const errorResponse = (error: unknown, method: string, path: string): Response => {
    if (error instanceof RelayError) return error.toResponse();
    log.error("request failed", { method, path, error });
    // A full or read-only disk is the store's fault, not the request's: 503, and retry.
    return (storeFailure(error) ??
      new RelayError("internal", "Something went wrong on the relay")).toResponse();
  };
  app.onError((error, c) => errorResponse(error, c.req.method, c.req.path));
  app.notFound(() => new RelayError("not_found", "No such route").toResponse());

  app.use("*", async function context(c, next) {
    const addr = c.env?.remoteAddr;
    const remoteIp = addr && "hostname" in addr ? addr.hostname : "unknown";
    const ip = resolveClientIp(c.req.raw.headers, remoteIp);
    c.set("clientIp", ip);
    c.set("clientKey", clientKey(ip));
    const startedAt = performance.now();
    await next();
    requestSeconds.add((performance.now() - startedAt) / 1000);
    countRequest(routeGroup(c.req.path, config.basePath), c.res.status);
  });
  // Upgrade responses have immutable headers; every other response gets the security set.
  app.use("*", async function securityHeaders(c, next) {
    if (isUpgrade(c.req.raw)) return await next();
    await headers(c, next);
  });

  const api = new Hono<RelayEnv>();
  // A page deployed on another host (ALLOWED_ORIGINS) may call the API; credentials go in
  // the Authorization header, never cookies, so no credentialed CORS is needed.
  if (config.allowedOrigins.length > 0) {
    api.use(
      "*",
      cors({
        origin: (origin) => config.allowedOrigins.includes(origin) ? origin : null,
        allowMethods: ["GET", "POST"],
        allowHeaders: ["authorization", "content-type"],
        exposeHeaders: ["retry-after"],
        maxAge: 600,
      }),
    );
  }
  api.use(
    "*",
    bodyLimit({
      maxSize: config.bodySizeLimitBytes,
      onError: () => {
        throw new RelayError(
          "body_too_large",
          `The request body is larger than ${config.bodySizeLimitBytes} bytes`,
        );
      },
    }),
  );
  api.get("/chat", (c) => visitorSocket(c, deps));
  api.get("/worker/updates", async (c) => workerSocket(c, deps, await auth.workerSocket(c)));
  api.get("/metrics", async (c) => {
    await auth.serviceOrAdmin(c);
    return c.json(metricsSnapshot(deps));
  });
  api.route("/", visitorRoutes(deps));
  api.route("/", workerRoutes(deps));
  api.route("/", adminRoutes(deps));
  api.all("*", () => {
    throw new RelayError("not_found", "No such API route");
  });

  const healthz = () => new Response("ok\n", { headers: { "content-type": "text/plain" } });
  const metricsRoute = async (c: RelayContext) => {
    await auth.serviceOrAdmin(c);
    return new Response(metrics.render(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  };

  for (const prefix of new Set(["", config.basePath])) {
    app.route(`${prefix}/api`, api);
    app.get(`${prefix}/healthz`, healthz);
    app.get(`${prefix}/metrics`, metricsRoute);
  }

  if (deps.frontendServed) {
    const files = new StaticFiles(config.webDir, { allowedOrigins: config.allowedOrigins });
    const pageRoot = config.basePath || "";
    if (pageRoot) app.get(pageRoot, (c) => c.redirect(`${pageRoot}/`, 301));
    app.get(`${pageRoot}/*`, async (c) => {
      // The raw path, decoded once here (`c.req.path` is already decoded by Hono).
      const rel = decodePagePath(new URL(c.req.url).pathname.slice(pageRoot.length + 1));
      const response = await files.serve(
        rel,
        c.req.header("if-none-match") ?? null,
        c.req.header("origin") ?? null,
      );
      if (!response) throw new RelayError("not_found", "No such page");
      return response;
    });
  }
  // The worker's per-token POST, beside the app with the app's checks (`agentChunkRoute()`).
  const chunkRoute = agentChunkRoute(deps, {
    errorResponse,
    async finish(res, path, startedAt) {
      await headers({ res } as unknown as RelayContext, async () => {});
      requestSeconds.add((performance.now() - startedAt) / 1000);
      countRequest(routeGroup(path, config.basePath), res.status);
      return res;
    },
  });
  if (chunkRoute && options.chunkRoute !== false) {
    const honoFetch = app.fetch;
    app.fetch = (req, env, executionCtx) => {
      if (!chunkRoute.handles(req)) return honoFetch(req, env, executionCtx);
      // As the `context` middleware (its warning about an untrusted proxy included).
      const addr = (env as RelayEnv["Bindings"] | undefined)?.remoteAddr;
      resolveClientIp(req.headers, addr && "hostname" in addr ? addr.hostname : "unknown");
      return chunkRoute.serve(req);
    };
  }
  return app;
}
