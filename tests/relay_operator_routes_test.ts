/**
 * Health, liveness, metrics, the admin export, BASE_PATH and the error shape and headers on every
 * route (in-process relay).
 */
import { HealthResponse } from "../lib/protocol.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  bearer,
  type Json,
  postMessage,
  RecordingSocket,
  request,
  type Res,
  sleep,
  upgradeRequest,
  visitorSocket,
  visitorToken,
  workerRequest,
  workerSocket,
} from "./_clients.ts";
import { withAppRelay } from "./_relay_in_process.ts";
import { TEST_SECRETS } from "./_relay_process.ts";
import {
  ADMIN,
  assertRouteError as assertError,
  assertSecurityHeaders,
  eventually,
  rawPost,
  SMALL_LIMITS,
  SVC,
  UPGRADE,
  WRONG_SERVICE_TOKEN,
} from "./_route_checks.ts";

// ---------------------------------------------------------------------------------------
// Health, liveness, metrics

Deno.test("/api/health reflects the worker's status report and goes offline when the worker goes quiet", async () => {
  await withAppRelay({ WORKER_STALE_THRESHOLD_MS: "2000" }, async (relay) => {
    let raw: Json = null;
    const health = async () => {
      const res = await request(`${relay.url}/api/health`);
      assertEquals(res.status, 200);
      assertSecurityHeaders(res, "health");
      raw = res.body;
      return HealthResponse.parse(res.body);
    };
    const link = (h: HealthResponse, name: string) => h.chain.find((l) => l.name === name)!;

    const before = await health();
    assertEquals(before.chain.map((l) => l.name), ["frontend", "relay", "worker", "agent", "llm"]);
    assertEquals(
      [before.relay, before.workerReady, before.workerLastSeenAt, before.workerStatus],
      ["ok", false, null, null],
    );
    assertEquals(
      [link(before, "worker").status, link(before, "agent").status, link(before, "llm").status],
      ["offline", "unknown", "unknown"],
    );
    assertEquals(link(before, "relay").status, "online");

    const report = await workerRequest(relay.url, "/api/worker/status", {
      agentApi: { status: "online", detail: "agent answers", latencyMs: 12 },
      llm: { status: "degraded", detail: "vLLM is slow", checkedAt: "2030-01-01T00:00:00.000Z" },
      workerId: "gpu-box-1",
    }, { workerId: "gpu-box-1" });
    assertEquals([report.status, report.body], [200, { ok: true }]);

    const during = await health();
    assertEquals(during.workerReady, true);
    assert(during.workerLastSeenAt !== null, "a last-seen time");
    // Exactly the component statuses: nothing else the worker sent (its id) is published.
    assertEquals(raw.workerStatus, {
      agentApi: { status: "online", detail: "agent answers", latencyMs: 12 },
      llm: { status: "degraded", detail: "vLLM is slow", checkedAt: "2030-01-01T00:00:00.000Z" },
    });
    assertEquals(
      [link(during, "worker").status, link(during, "agent").status, link(during, "llm").status],
      ["online", "online", "degraded"],
    );
    assertEquals([link(during, "agent").detail, link(during, "agent").latencyMs], [
      "agent answers",
      12,
    ]);
    assertEquals([link(during, "llm").detail, link(during, "llm").checkedAt], [
      "vLLM is slow",
      "2030-01-01T00:00:00.000Z",
    ]);

    // A later report replaces the earlier one.
    await workerRequest(relay.url, "/api/worker/status", {
      agentApi: { status: "offline", detail: "agent down" },
      llm: { status: "unknown" },
    }, { workerId: "gpu-box-1" });
    const replaced = await health();
    assertEquals(
      [
        link(replaced, "agent").status,
        link(replaced, "agent").detail,
        link(replaced, "llm").status,
      ],
      ["offline", "agent down", "unknown"],
    );

    // No heartbeat for longer than WORKER_STALE_THRESHOLD_MS: the worker is offline and its
    // old report is no longer shown as current.
    let stale: HealthResponse = replaced;
    await eventually(async () => {
      stale = await health();
      return !stale.workerReady;
    }, "the worker to go stale");
    assertEquals(stale.workerStatus, null);
    assert(stale.workerLastSeenAt !== null, "the last-seen time is kept");
    assertEquals(
      [link(stale, "worker").status, link(stale, "agent").status, link(stale, "llm").status],
      ["offline", "unknown", "unknown"],
    );
    assert(link(stale, "worker").detail.startsWith("Last seen"), link(stale, "worker").detail);

    // Any worker request is a heartbeat again.
    assertEquals(
      (await workerRequest(relay.url, "/api/chats/open", undefined, { workerId: "gpu-box-1" }))
        .status,
      200,
    );
    const back = await health();
    assertEquals([back.workerReady, link(back, "worker").status], [true, "online"]);

    // Bad reports are refused and change nothing.
    assertError(
      await workerRequest(relay.url, "/api/worker/status", {
        agentApi: { status: "online", detail: "x".repeat(501) },
        llm: { status: "online" },
      }),
      400,
      "invalid_body",
    );
    assertError(
      await workerRequest(relay.url, "/api/worker/status", { agentApi: { status: "online" } }),
      400,
      "invalid_body",
    );
  });
});

Deno.test("/healthz answers without credentials and /metrics needs the service or admin token", async () => {
  await withAppRelay({}, async (relay) => {
    const healthz = await request(`${relay.url}/healthz`);
    assertEquals([healthz.status, healthz.body], [200, "ok\n"]);
    assert(healthz.headers.get("content-type")?.startsWith("text/plain"), "plain text");

    const token = await visitorToken(relay.url);
    assertEquals((await postMessage(relay.url, token, "c-metrics", "count me")).status, 201);

    const metricsUrl = `${relay.url}/metrics`;
    assertError(await request(metricsUrl), 401, "missing_credentials");
    assertError(
      await request(metricsUrl, { headers: { "x-service-token": WRONG_SERVICE_TOKEN } }),
      401,
      "bad_service_token",
    );
    assertError(
      await request(metricsUrl, { headers: bearer("adm-wrong-0123456789abcdef0123456789") }),
      401,
      "missing_credentials",
    );
    assertError(await request(metricsUrl, { headers: bearer(token) }), 401, "missing_credentials");
    assertError(
      await request(metricsUrl, { headers: bearer(TEST_SECRETS.SERVICE_TOKEN) }),
      401,
      "missing_credentials",
      "the service token as a bearer",
    );

    for (const headers of [SVC, ADMIN]) {
      const res = await request(metricsUrl, { headers });
      assertEquals(res.status, 200);
      assertEquals(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
      const text: string = res.body;
      assert(text.endsWith("\n"), "ends with a newline");
      const lines = text.trimEnd().split("\n");
      for (const line of lines) {
        assert(
          /^# (HELP|TYPE) [a-z_]+ .+$/.test(line) ||
            /^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? \d+(\.\d+)?$/.test(line),
          `Prometheus text line: ${line}`,
        );
      }
      for (
        const name of [
          "terrarium_http_requests_total",
          "terrarium_messages_total",
          "terrarium_visitor_sockets",
          "terrarium_open_turns",
        ]
      ) {
        assert(lines.includes(`# TYPE ${name} ${name.endsWith("_total") ? "counter" : "gauge"}`));
      }
      assert(lines.includes('terrarium_messages_total{sender="Visitor"} 1'), text);
      assert(lines.includes("terrarium_open_turns 1"), text);
      assert(
        lines.some((l) =>
          l.startsWith('terrarium_http_requests_total{group="visitor",status="201"}')
        ),
        text,
      );
      assert(
        lines.some((l) =>
          l.startsWith('terrarium_http_requests_total{group="metrics",status="401"}')
        ),
        text,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------
// Admin export

Deno.test("the admin export lists chats as JSON Lines with client IP and user agent, filtered by time", async () => {
  await withAppRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const post = (chatId: string, content: string, userAgent: string) =>
      request(`${relay.url}/api/chat/${chatId}/messages`, {
        body: { content },
        headers: { ...bearer(token), "user-agent": userAgent },
      });
    const a = await post("chat-early", "First chat", "EarlyBrowser/1.0");
    assertEquals(a.status, 201);
    await sleep(20); // distinct creation times for the filters below
    const b = await post("chat-late", "Second chat", "LateBrowser/2.0");
    assertEquals(b.status, 201);
    const tA = Date.parse(a.body.createdAt);
    const tB = Date.parse(b.body.createdAt);
    assert(tB > tA, "the chats were created at different times");

    const exportUrl = `${relay.url}/api/admin/transcripts`;
    const read = async (query = "") => {
      const res = await fetch(exportUrl + query, { headers: ADMIN });
      const text = await res.text();
      assertEquals(res.status, 200, text);
      assertEquals(res.headers.get("content-type"), "application/x-ndjson; charset=utf-8");
      assertEquals(res.headers.get("cache-control"), "no-store");
      assertEquals(res.headers.get("x-content-type-options"), "nosniff");
      return text === "" ? [] : text.trimEnd().split("\n").map((line) => JSON.parse(line));
    };

    const all = await read();
    const byId = new Map(all.map((chat: Json) => [chat.id, chat]));
    assertEquals([...byId.keys()].sort(), ["chat-early", "chat-late"]);
    const early = byId.get("chat-early");
    assertEquals(
      [early.clientIp, early.userAgent, early.createdAt],
      ["127.0.0.1", "EarlyBrowser/1.0", a.body.createdAt],
    );
    assertEquals(early.messages.map((m: Json) => [m.sender, m.content]), [[
      "Visitor",
      "First chat",
    ]]);
    assertEquals(byId.get("chat-late").userAgent, "LateBrowser/2.0");

    const iso = (ms: number) => encodeURIComponent(new Date(ms).toISOString());
    assertEquals((await read(`?since=${iso(tB)}`)).map((c: Json) => c.id), ["chat-late"]);
    assertEquals((await read(`?until=${iso(tB)}`)).map((c: Json) => c.id), ["chat-early"]);
    assertEquals(
      (await read(`?since=${iso(tA)}&until=${iso(tB)}`)).map((c: Json) => c.id),
      ["chat-early"],
    );
    assertEquals((await read(`?since=${iso(tB + 60_000)}`)).length, 0);
    assertEquals((await read(`?until=${iso(tA - 60_000)}`)).length, 0);
    assertEquals((await read(`?since=${iso(tA - 60_000)}&until=${iso(tB + 60_000)}`)).length, 2);

    assertError(
      await request(`${exportUrl}?since=yesterday`, { headers: ADMIN }),
      400,
      "bad_query",
    );
    assertError(await request(`${exportUrl}?until=soon`, { headers: ADMIN }), 400, "bad_query");

    assertError(await request(exportUrl), 401, "missing_admin_token");
    assertError(
      await request(exportUrl, { headers: bearer("adm-wrong-0123456789abcdef0123456789") }),
      401,
      "bad_admin_token",
    );
    assertError(
      await request(exportUrl, { headers: bearer(TEST_SECRETS.SERVICE_TOKEN) }),
      401,
      "bad_admin_token",
      "the service token",
    );
    assertError(await request(exportUrl, { headers: bearer(token) }), 401, "bad_admin_token");
    assertError(await request(exportUrl, { headers: SVC }), 401, "missing_admin_token");
  });
});

Deno.test("without ADMIN_TOKEN the admin export is disabled and admin bearer tokens open nothing", async () => {
  await withAppRelay({ ADMIN_TOKEN: "" }, async (relay) => {
    const exportUrl = `${relay.url}/api/admin/transcripts`;
    assertError(await request(exportUrl), 404, "admin_disabled");
    assertError(await request(exportUrl, { headers: ADMIN }), 404, "admin_disabled");
    assertError(
      await request(`${relay.url}/metrics`, { headers: ADMIN }),
      401,
      "missing_credentials",
    );
    assertError(
      await request(`${relay.url}/metrics`, { headers: { authorization: "Bearer " } }),
      401,
      "missing_credentials",
      "an empty bearer",
    );
    assertEquals((await request(`${relay.url}/metrics`, { headers: SVC })).status, 200);
  });
});

// ---------------------------------------------------------------------------------------
// BASE_PATH, headers, error shape

Deno.test("every route answers under BASE_PATH as well as at the root", async () => {
  await withAppRelay({ BASE_PATH: "/terrarium", ...SMALL_LIMITS }, async (relay) => {
    const base = `${relay.url}/terrarium`;
    for (const root of [relay.url, base]) {
      const token = await visitorToken(root);
      const chatId = root === base ? "under-base" : "at-root";
      const posted = await postMessage(root, token, chatId, `hello from ${chatId}`);
      assertEquals(posted.status, 201, root);
      const history = await request(`${root}/api/chat/${chatId}/messages`, {
        headers: bearer(token),
      });
      assertEquals(history.body.map((m: Json) => m.content), [`hello from ${chatId}`]);
      assertEquals(
        (await request(`${root}/api/chat/${chatId}/worker-state`, { headers: bearer(token) }))
          .status,
        200,
      );
      assertEquals((await request(`${root}/api/health`)).status, 200);
      assertEquals((await request(`${root}/healthz`)).body, "ok\n");
      assertEquals((await request(`${root}/metrics`, { headers: SVC })).status, 200);
      assertEquals((await workerRequest(root, "/api/chats/open")).status, 200);
      assertEquals(
        (await workerRequest(root, "/api/worker/status", {
          agentApi: { status: "online" },
          llm: { status: "online" },
        })).body,
        { ok: true },
      );
      const exported = await fetch(`${root}/api/admin/transcripts`, { headers: ADMIN });
      assertEquals(exported.status, 200);
      await exported.body?.cancel();

      // The same guards and error shapes under the prefix.
      assertError(await request(`${root}/api/chat/${chatId}/messages`), 401, "missing_credentials");
      assertError(await request(`${root}/api/chats/open`), 401, "missing_service_token");
      assertError(await request(`${root}/metrics`), 401, "missing_credentials");
      assertError(await request(`${root}/api/admin/transcripts`), 401, "missing_admin_token");
      assertError(await rawPost(`${root}/api/session`, "{"), 400, "malformed_json");
      assertError(await postMessage(root, token, chatId, "x".repeat(3000)), 413, "body_too_large");
      assertError(await postMessage(root, token, chatId, "x".repeat(101)), 413, "message_too_long");
      assertError(await postMessage(root, token, "bad%20id", "hi"), 400, "bad_chat_id");
      assertError(await request(`${root}/api/no-such-route`), 404, "not_found");

      const socket = await visitorSocket(root, chatId, token);
      assertEquals(socket.events.filter((e) => e.type === "message").length, 1, root);
      await socket.close();
      const worker = await workerSocket(root);
      await worker.close();
    }
    // Both prefixes serve the one store.
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds.sort(), [
      "at-root",
      "under-base",
    ]);
    // Another prefix is not an alias.
    assertError(await request(`${relay.url}/other/api/health`), 404, "not_found");
    assertError(await request(`${relay.url}/terrariumx/api/health`), 404, "not_found");
  });
});

Deno.test("JSON responses carry the security headers, errors and limits included", async () => {
  await withAppRelay({ ...SMALL_LIMITS, RATE_LIMIT_MAX_PER_CHAT: "1" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const responses: [string, Res][] = [
      ["health", await request(`${relay.url}/api/health`)],
      ["posted", await postMessage(relay.url, token, "c-h", "one")],
      ["rate limited", await postMessage(relay.url, token, "c-h", "two")],
      ["history", await request(`${relay.url}/api/chat/c-h/messages`, { headers: bearer(token) })],
      ["401", await request(`${relay.url}/api/chat/c-h/messages`)],
      ["404 api", await request(`${relay.url}/api/nope`)],
      ["404 root", await request(`${relay.url}/nope`)],
      ["413", await postMessage(relay.url, token, "c-x", "x".repeat(3000))],
      ["400", await rawPost(`${relay.url}/api/session`, "nope")],
      ["open chats", await workerRequest(relay.url, "/api/chats/open")],
      ["healthz", await request(`${relay.url}/healthz`)],
      ["metrics", await request(`${relay.url}/metrics`, { headers: SVC })],
    ];
    for (const [what, res] of responses) assertSecurityHeaders(res, what);
    const limited = responses[2]![1];
    assertError(limited, 429, "rate_limited");
    assert(Number(limited.headers.get("retry-after")) >= 1, "Retry-After on 429");
  });
});

Deno.test("a visitor waiting on unanswered messages gets 429 too_many_pending with Retry-After", async () => {
  await withAppRelay({ MAX_PENDING_TURNS_PER_CHAT: "2" }, async (relay) => {
    const token = await visitorToken(relay.url);
    assertEquals((await postMessage(relay.url, token, "c-pend", "one")).status, 201);
    assertEquals((await postMessage(relay.url, token, "c-pend", "two")).status, 201);
    const third = await postMessage(relay.url, token, "c-pend", "three");
    assertError(third, 429, "too_many_pending");
    assert(Number(third.headers.get("retry-after")) >= 1, "Retry-After");
    const history = await request(`${relay.url}/api/chat/c-pend/messages`, {
      headers: bearer(token),
    });
    assertEquals(history.body.map((m: Json) => m.content), ["one", "two"]);
  });
});

Deno.test("the worker socket route refuses plain GETs and unauthenticated upgrades", async () => {
  await withAppRelay({}, async (relay) => {
    assertError(
      await request(`${relay.url}/api/worker/updates`, { headers: SVC }),
      400,
      "websocket_required",
    );
    assertError(
      await upgradeRequest(`${relay.url}/api/worker/updates`),
      401,
      "missing_service_token",
      "",
      UPGRADE,
    );
    const refused = new RecordingSocket(`${relay.url.replace("http", "ws")}/api/worker/updates`);
    let failed = false;
    await refused.opened.catch(() => failed = true);
    assert(failed, "the handshake fails");
    await refused.close();
    assertEquals(refused.events, []);
  });
});
