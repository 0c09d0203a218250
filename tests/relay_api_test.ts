/** Every relay route through a real process: credentials, bad input, limits, headers. */
import { signRequest } from "../lib/hmac.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  assertError,
  type Json,
  postMessage,
  RecordingSocket,
  request,
  tokenProtocols,
  upgradeRequest,
  visitorSocket,
  visitorToken,
  workerRequest,
} from "./_clients.ts";
import { TEST_SECRETS, withRelay } from "./_relay_process.ts";

const SVC = { "x-service-token": TEST_SECRETS.SERVICE_TOKEN };
const ADMIN = { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` };

Deno.test("worker routes refuse missing and wrong service tokens", async () => {
  await withRelay({}, async (relay) => {
    const routes: [string, unknown][] = [
      ["/api/chats/open", undefined],
      ["/api/chat/c1/agent", { content: "x" }],
      ["/api/chat/c1/agent-chunk", { content: "x" }],
      ["/api/chat/c1/worker-state", { state: "processing" }],
      ["/api/worker/status", { agentApi: { status: "online" }, llm: { status: "online" } }],
      ["/api/worker/turns/claim", { workerId: "w" }],
    ];
    for (const [path, body] of routes) {
      const missing = await request(relay.url + path, body === undefined ? {} : { body });
      assertError(missing, 401, "missing_service_token");
      assertError(
        await workerRequest(relay.url, path, body, { token: "wrong-token-0123456789abcdef" }),
        401,
        "bad_service_token",
      );
    }
    const socket = await request(`${relay.url}/api/worker/updates`, {
      headers: { upgrade: "websocket" },
    });
    assertError(socket, 401, "missing_service_token");
  });
});

Deno.test("visitor routes need a session token or, while allowed, the access code", async () => {
  await withRelay({}, async (relay) => {
    assertError(await request(`${relay.url}/api/chat/c1/messages`), 401, "missing_credentials");
    const forged = { authorization: "Bearer eyJleHAiOjk5OTk5OTk5OTl9.AAAA" };
    assertError(
      await request(`${relay.url}/api/chat/c1/messages`, { headers: forged }),
      401,
      "bad_token",
    );
    assertError(
      await request(`${relay.url}/api/session`, { body: { accessCode: "nope" } }),
      401,
      "bad_access_code",
    );
    assertError(
      await request(`${relay.url}/api/chat/c1/cancel`, { method: "POST" }),
      401,
      "missing_credentials",
    );
    // The original protocol: the access code in the body.
    const legacy = await request(`${relay.url}/api/chat/c1/messages`, {
      body: { content: "hi", accessCode: TEST_SECRETS.CHAT_PASSWORD },
    });
    assertEquals(legacy.status, 201);
    const token = await visitorToken(relay.url);
    const state = await request(`${relay.url}/api/chat/c1/worker-state`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals([state.body.type, state.body.state], ["workerState", "queued"]);
  });
  await withRelay({ LEGACY_ACCESS_CODE: "false" }, async (relay) => {
    const legacy = await request(`${relay.url}/api/chat/c1/messages`, {
      body: { content: "hi", accessCode: TEST_SECRETS.CHAT_PASSWORD },
    });
    assertError(legacy, 401, "legacy_access_code_disabled");
    assertEquals(
      (await postMessage(relay.url, await visitorToken(relay.url), "c1", "hi")).status,
      201,
    );
  });
});

Deno.test("bad input gets a clear 4xx, never reaches the worker, and the relay stays up", async () => {
  await withRelay({ BODY_SIZE_LIMIT: "2kb", MAX_MESSAGE_LENGTH: "100" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const auth = { authorization: `Bearer ${token}` };
    const post = (chatId: string, init: { body?: unknown; rawBody?: string }) =>
      request(`${relay.url}/api/chat/${chatId}/messages`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        ...init,
      });
    assertError(await post("c1", { rawBody: "{not json" }), 400, "malformed_json");
    assertError(await post("c1", { body: { content: 42 } }), 400, "invalid_body");
    assertError(await post("c1", { body: { content: "   " } }), 400, "empty_message");
    assertError(await post("c1", { body: { content: "x".repeat(101) } }), 413, "message_too_long");
    assertError(await post("c1", { body: { content: "x".repeat(5000) } }), 413, "body_too_large");
    assertError(await post("bad%20id", { body: { content: "hi" } }), 400, "bad_chat_id");
    assertError(await post("x".repeat(65), { body: { content: "hi" } }), 400, "bad_chat_id");
    assertError(
      await workerRequest(relay.url, "/api/chat/c1/worker-state", { state: "dancing" }),
      400,
      "invalid_body",
    );
    assertError(
      await workerRequest(relay.url, "/api/chat/c1/agent", { content: "x", replyTo: "nope" }),
      404,
      "unknown_turn",
    );
    assertError(await request(`${relay.url}/api/nothing-here`), 404, "not_found");
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds, []);
    assertEquals((await request(`${relay.url}/healthz`)).status, 200);
  });
});

Deno.test("rate limits and the access-code lockout answer 429 with Retry-After", async () => {
  await withRelay(
    { RATE_LIMIT_MAX_PER_CHAT: "2", ACCESS_CODE_MAX_FAILURES: "3" },
    async (relay) => {
      const token = await visitorToken(relay.url);
      const statuses = [];
      for (let i = 0; i < 3; i++) {
        statuses.push(
          (await postMessage(relay.url, token, "busy", `m${i}`)).status,
        );
      }
      assertEquals(statuses.slice(0, 2), [201, 201]);
      const limited = await postMessage(relay.url, token, "busy", "again");
      assertError(limited, 429, "rate_limited");
      assert(Number(limited.headers.get("retry-after")) >= 1);

      for (let i = 0; i < 3; i++) {
        await request(`${relay.url}/api/session`, {
          body: { accessCode: "wrong" },
        });
      }
      const locked = await request(`${relay.url}/api/session`, {
        body: { accessCode: TEST_SECRETS.CHAT_PASSWORD },
      });
      assertError(locked, 429, "locked_out");
      assert(Number(locked.headers.get("retry-after")) > 0);
    },
  );
});

Deno.test("HMAC signing: signed requests pass; unsigned, forged, replayed and stale ones do not", async () => {
  const secret = "hmac-secret-0123456789abcdef0123";
  await withRelay({ HMAC_ENABLED: "true", HMAC_SECRET: secret }, async (relay) => {
    assertEquals(
      (await workerRequest(relay.url, "/api/chats/open", undefined, { hmacSecret: secret })).status,
      200,
    );
    assertError(await workerRequest(relay.url, "/api/chats/open"), 401, "bad_signature");
    assertError(
      await workerRequest(relay.url, "/api/chats/open", undefined, {
        hmacSecret: "another-secret-0123456789",
      }),
      401,
      "bad_signature",
    );
    const signed = await signRequest(secret, "GET", "/api/chats/open");
    const headers = { ...SVC, ...signed };
    assertEquals((await request(`${relay.url}/api/chats/open`, { headers })).status, 200);
    assertError(await request(`${relay.url}/api/chats/open`, { headers }), 401, "bad_signature");
    const stale = await signRequest(
      secret,
      "GET",
      "/api/chats/open",
      new Uint8Array(),
      Date.now() - 3_600_000,
    );
    assertError(
      await request(`${relay.url}/api/chats/open`, { headers: { ...SVC, ...stale } }),
      401,
      "bad_signature",
    );
    // A signature covers the body: the same headers with another body fail.
    const body = JSON.stringify({ state: "processing" });
    const sig = await signRequest(
      secret,
      "POST",
      "/api/chat/c1/worker-state",
      new TextEncoder().encode(body),
    );
    const tampered = await request(`${relay.url}/api/chat/c1/worker-state`, {
      method: "POST",
      rawBody: JSON.stringify({ state: "error" }),
      headers: { ...SVC, ...sig, "content-type": "application/json" },
    });
    assertError(tampered, 401, "bad_signature");
  });
});

Deno.test("visitor sockets: no credentials 401, foreign origins 1008, big frames 1009, bad frames an error event", async () => {
  await withRelay(
    { MAX_WS_FRAME_BYTES: "1kb", ALLOWED_ORIGINS: "https://chat.example" },
    async (relay) => {
      const ws = relay.url.replace("http", "ws");
      assertError(
        await upgradeRequest(`${relay.url}/api/chat?chatId=c1`, { origin: "https://chat.example" }),
        401,
        "missing_credentials",
      );
      const token = await visitorToken(relay.url);
      const foreign = new RecordingSocket(
        `${ws}/api/chat?chatId=c1`,
        { origin: "https://evil.example" },
        tokenProtocols(token),
      );
      assertEquals(await foreign.waitClosed(), 1008);
      const allowed = new RecordingSocket(
        `${ws}/api/chat?chatId=c1`,
        { origin: "https://chat.example" },
        tokenProtocols(token),
      );
      await allowed.opened;
      assertEquals(allowed.socket.protocol, "terrarium.v1");
      await allowed.waitFor((es) => es.some((e) => e.type === "ready"));
      allowed.send({ type: "shout" });
      await allowed.waitFor((es) => es.some((e) => e.type === "error" && e.code === "bad_event"));
      allowed.send({ type: "ping" });
      await allowed.waitFor((es) => es.some((e) => e.type === "pong"), 5_000, "still usable");
      allowed.socket.send("x".repeat(2048));
      assertEquals(await allowed.waitClosed(), 1009);

      assertError(
        await upgradeRequest(`${relay.url}/api/chat?chatId=c1`, {
          "sec-websocket-protocol": "terrarium.v1, terrarium.token.forged.token",
        }),
        401,
        "bad_token",
      );
      const plain = await visitorSocket(relay.url, "c1", token);
      await plain.close();
    },
  );
});

Deno.test("health, metrics and the admin export answer with the right shapes and guards", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    await request(`${relay.url}/api/chat/exported/messages`, {
      body: { content: "For the record" },
      headers: { authorization: `Bearer ${token}`, "user-agent": "ExportBrowser/1.0" },
    });
    await workerRequest(relay.url, "/api/worker/status", {
      agentApi: { status: "online", detail: "ok", latencyMs: 3 },
      llm: { status: "degraded", detail: "slow" },
    });
    const health = (await request(`${relay.url}/api/health`)).body;
    assertEquals(health.chain.map((l: Json) => l.name), [
      "frontend",
      "relay",
      "worker",
      "agent",
      "llm",
    ]);
    assertEquals([health.workerReady, health.chain[3].status, health.chain[4].status], [
      true,
      "online",
      "degraded",
    ]);

    assertError(await request(`${relay.url}/metrics`), 401, "missing_credentials");
    const metrics = await request(`${relay.url}/metrics`, { headers: ADMIN });
    assert(String(metrics.headers.get("content-type")).startsWith("text/plain; version=0.0.4"));
    assert(metrics.body.includes("# TYPE terrarium_messages_total counter"));

    assertError(await request(`${relay.url}/api/admin/transcripts`), 401, "missing_admin_token");
    assertError(
      await request(`${relay.url}/api/admin/transcripts`, {
        headers: { authorization: "Bearer nope" },
      }),
      401,
      "bad_admin_token",
    );
    const exported = await fetch(`${relay.url}/api/admin/transcripts`, { headers: ADMIN });
    assertEquals(exported.headers.get("content-type"), "application/x-ndjson; charset=utf-8");
    const lines = (await exported.text()).trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(lines.length, 1);
    assertEquals(
      [lines[0].id, lines[0].userAgent, lines[0].clientIp, lines[0].messages[0].content],
      [
        "exported",
        "ExportBrowser/1.0",
        "127.0.0.1",
        "For the record",
      ],
    );
    const future = await request(`${relay.url}/api/admin/transcripts?since=2999-01-01T00:00:00Z`, {
      headers: ADMIN,
    });
    assertEquals(future.body, "");
    assertError(
      await request(`${relay.url}/api/admin/transcripts?since=yesterday`, { headers: ADMIN }),
      400,
      "bad_query",
    );

    const json = await request(`${relay.url}/api/health`);
    assertEquals(json.headers.get("x-content-type-options"), "nosniff");
    assert(json.headers.get("x-frame-options"));
    assert(!relay.lines.join("\n").includes(TEST_SECRETS.SERVICE_TOKEN), "no secret in the logs");
    assert(!relay.lines.join("\n").includes(token), "no token in the logs");
  });
  await withRelay({ ADMIN_TOKEN: "" }, async (relay) => {
    assertError(
      await request(`${relay.url}/api/admin/transcripts`, { headers: ADMIN }),
      404,
      "admin_disabled",
    );
  });
});

Deno.test("every route also answers under BASE_PATH", async () => {
  await withRelay({ BASE_PATH: "/terrarium" }, async (relay) => {
    const token = await visitorToken(`${relay.url}/terrarium`);
    const posted = await postMessage(`${relay.url}/terrarium`, token, "based", "hello");
    assertEquals(posted.status, 201);
    assertEquals((await workerRequest(`${relay.url}/terrarium`, "/api/chats/open")).body.chatIds, [
      "based",
    ]);
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds, ["based"]);
    assertEquals((await request(`${relay.url}/terrarium/healthz`)).status, 200);
    const socket = await visitorSocket(`${relay.url}/terrarium`, "based", token);
    assertEquals(socket.events.filter((e) => e.type === "message").length, 1);
    await socket.close();
  });
});
