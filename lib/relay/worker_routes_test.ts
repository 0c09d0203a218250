import { assert, assertEquals } from "../../tests/_assert.ts";
import { TEST_SECRETS } from "../../tests/_relay_process.ts";
import { Logger } from "../log.ts";
import { Auth } from "./auth.ts";
import { parseRelayConfig } from "./config.ts";
import { relayApp } from "./relay_app.ts";
import { relayDeps } from "./relay_deps.ts";
import { relayLimits } from "./relay_limits.ts";
import { testService } from "./_test_service.ts";
import { agentChunkRoute } from "./worker_routes.ts";

/** The relay's app twice over one service: with the chunk route beside Hono, and without. */
async function twoApps(env: Record<string, string> = {}) {
  const config = parseRelayConfig({
    ...TEST_SECRETS,
    KV_PATH: ":memory:",
    BODY_SIZE_LIMIT: "4096",
    ...env,
  });
  const log = new Logger("test", "error", () => {});
  const { service, parts, close } = await testService(config);
  const limits = relayLimits(config, null);
  const auth = new Auth(config, log, { limits });
  const deps = relayDeps(service, parts, { auth, limits, frontendServed: false });
  await service.postVisitorMessage("c1", "Hi?", { ip: "127.0.0.1", userAgent: "test" });
  const turn = (await service.claim("w1"))!;
  return {
    deps,
    turn,
    beside: relayApp(deps),
    hono: relayApp(deps, { chunkRoute: false }),
    close,
  };
}

const remoteAddr = { transport: "tcp" as const, hostname: "127.0.0.1", port: 40000 };

function chunkRequest(path: string, body: string, headers: Record<string, string> = {}): Request {
  return new Request(`http://127.0.0.1:8000${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "content-length": String(new TextEncoder().encode(body).length),
      "x-service-token": TEST_SECRETS.SERVICE_TOKEN,
      "x-worker-id": "w1",
      ...headers,
    },
    body,
  });
}

Deno.test("POST /agent-chunk beside Hono answers as Hono does: status, body, headers, counters", async () => {
  const { deps, turn, beside, hono, close } = await twoApps();
  const good = (content: string) => JSON.stringify({ content, turnId: turn.id, offset: 0 });
  const cases: [string, string, Record<string, string>][] = [
    ["/api/chat/c1/agent-chunk", good("Hel"), {}],
    ["/api/chat/c1/agent-chunk", good("Hel"), { "x-service-token": "wrong" }],
    ["/api/chat/c1/agent-chunk", good("Hel"), { "x-service-token": "" }],
    ["/api/chat/bad.id/agent-chunk", good("Hel"), {}],
    ["/api/chat/c1/agent-chunk", "{not json", {}],
    ["/api/chat/c1/agent-chunk", JSON.stringify({ content: 5 }), {}],
    ["/api/chat/c1/agent-chunk", JSON.stringify({ content: "x", turnId: "nope" }), {}],
    [
      "/api/chat/c1/agent-chunk",
      JSON.stringify({ content: "x", turnId: turn.id, leaseId: "L" }),
      {},
    ],
    ["/api/chat/c1/agent-chunk", JSON.stringify({ content: "x", offset: 99, turnId: turn.id }), {}],
    ["/api/chat/c1/agent-chunk", good("x".repeat(5000)), {}],
  ];
  const statuses: number[] = [];
  try {
    for (const [path, body, headers] of cases) {
      const a = await beside.fetch(chunkRequest(path, body, headers), { remoteAddr });
      const b = await hono.fetch(chunkRequest(path, body, headers), { remoteAddr });
      const label = `${path} ${body.slice(0, 40)} ${JSON.stringify(headers)}`;
      assertEquals(a.status, b.status, label);
      statuses.push(a.status);
      assertEquals([...a.headers], [...b.headers], label);
      const [textA, textB] = [await a.text(), await b.text()];
      if (a.status === 200) {
        // Each took its own sequence number.
        const [jsonA, jsonB] = [JSON.parse(textA), JSON.parse(textB)];
        assertEquals(Object.keys(jsonA), Object.keys(jsonB), label);
        assertEquals(jsonB.seq, jsonA.seq + 1, label);
      } else {
        assertEquals(textA, textB, label);
      }
    }
    const counted = (status: string) =>
      deps.metrics.total(
        "terrarium_http_requests_total",
        (l) => l.group === "worker" && l.status === status,
      );
    assertEquals(statuses, [200, 401, 401, 400, 400, 400, 404, 409, 409, 413]);
    // Both ways counted every request under the same labels.
    assertEquals(counted("200"), 2);
    assertEquals(counted("401"), 4);
    assertEquals(counted("413"), 2);
    assert(deps.metrics.total("terrarium_http_request_seconds_total") > 0);
    // The worker's heartbeat, as the heartbeat middleware records it.
    const health = deps.registry.health(false);
    assert(health.workerLastSeenAt !== null);
  } finally {
    await close();
  }
});

Deno.test("agentChunkRoute() takes only a plain POST /agent-chunk with a Content-Length, under either prefix", async () => {
  const { deps, close } = await twoApps({ BASE_PATH: "/terra" });
  try {
    const route = agentChunkRoute(deps, {
      errorResponse: () => new Response(null, { status: 500 }),
      finish: (res) => Promise.resolve(res),
    })!;
    const takes = (path: string, init: RequestInit = {}) =>
      route.handles(
        new Request(`http://127.0.0.1:8000${path}`, {
          method: "POST",
          body: "{}",
          headers: { "content-length": "2" },
          ...init,
        }),
      );
    assert(takes("/api/chat/c1/agent-chunk"));
    assert(takes("/terra/api/chat/c1/agent-chunk"));
    assert(takes("/api/chat/c1/agent-chunk?x=1"));
    assertEquals(takes("/api/chat/c1/agent-chunk/"), false);
    assertEquals(takes("/api/chat/c%31/agent-chunk"), false);
    assertEquals(takes("/api/chat/a/b/agent-chunk"), false);
    assertEquals(takes("/api/chat//agent-chunk"), false);
    assertEquals(takes("/other/api/chat/c1/agent-chunk"), false);
    assertEquals(takes("/api/chat/c1/agent"), false);
    assertEquals(takes("/api/chat/c1/agent-chunk", { method: "PUT" }), false);
    const chunked = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("{}"));
        controller.close();
      },
    });
    assertEquals(takes("/api/chat/c1/agent-chunk", { body: chunked, headers: {} }), false);
    assertEquals(
      takes("/api/chat/c1/agent-chunk", {
        headers: { "content-length": "2", "transfer-encoding": "chunked" },
      }),
      false,
    );
  } finally {
    await close();
  }
  for (
    const env of <Record<string, string>[]> [
      { HMAC_ENABLED: "true", HMAC_SECRET: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c" },
      {
        ALLOWED_ORIGINS: "https://example.org",
      },
    ]
  ) {
    const other = await twoApps(env);
    try {
      const route = agentChunkRoute(other.deps, {
        errorResponse: () => new Response(null, { status: 500 }),
        finish: (res) => Promise.resolve(res),
      });
      assertEquals(route, null, JSON.stringify(env));
    } finally {
      await other.close();
    }
  }
});
