/**
 * Every HTTP route of SPEC §3 against a real relay process: the happy path, missing and
 * wrong credentials, malformed and schema-invalid bodies, size limits, bad chat ids, the
 * routes under BASE_PATH, /healthz, /metrics, /api/health and the admin export. Every error
 * must be exactly `{error, code}` JSON with the security headers on it.
 */
import { ChatMessage, ErrorBody, HealthResponse, SessionResponse, Turn } from "../lib/protocol.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  assertError as assertErrorBody,
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
import { TEST_SECRETS, withRelay } from "./_relay_process.ts";

const ADMIN = { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` };
const SVC = { "x-service-token": TEST_SECRETS.SERVICE_TOKEN };
const WRONG_SERVICE_TOKEN = "svc-wrong-0123456789abcdef012345678";
/** Small limits so the size checks are cheap to hit. */
const SMALL_LIMITS = { BODY_SIZE_LIMIT: "2kb", MAX_MESSAGE_LENGTH: "100" };

/** The headers `secureHeaders` must put on every (non-upgrade) response. */
function assertSecurityHeaders(res: { headers: Headers }, what: string): void {
  const h = res.headers;
  assertEquals(h.get("x-content-type-options"), "nosniff", `${what}: x-content-type-options`);
  assertEquals(h.get("x-frame-options"), "SAMEORIGIN", `${what}: x-frame-options`);
  assertEquals(h.get("referrer-policy"), "no-referrer", `${what}: referrer-policy`);
  assertEquals(h.get("cross-origin-resource-policy"), "same-site", `${what}: CORP`);
  assert(h.get("strict-transport-security")?.startsWith("max-age="), `${what}: HSTS`);
}

/** An error response: the status, the stable code, exactly `{error, code}`, JSON, headers. */
function assertError(
  res: Res,
  status: number,
  code: string,
  what = "",
  options: { upgrade?: boolean } = {},
): void {
  assertErrorBody(res, status, code, what);
  const label = `${what} → ${res.status} ${JSON.stringify(res.body)}`;
  assert(ErrorBody.safeParse(res.body).success, label);
  assert(res.body.error.length > 0, `${label}: a human sentence`);
  assert(
    res.headers.get("content-type")?.startsWith("application/json"),
    `${label}: JSON content type`,
  );
  // A refused WebSocket handshake is not a page; the relay skips the header set on upgrades.
  if (!options.upgrade) assertSecurityHeaders(res, label);
}

/** A POST with a raw (possibly broken) body. */
function rawPost(url: string, rawBody: string, headers: Record<string, string> = {}) {
  return request(url, {
    method: "POST",
    rawBody,
    headers: { "content-type": "application/json", ...headers },
  });
}

const UPGRADE = { upgrade: true };

/** Waits (bounded) until `check` is true, polling. */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------
// Visitor routes

Deno.test("POST /api/session issues an expiring token for the right code and refuses bad bodies", async () => {
  await withRelay(SMALL_LIMITS, async (relay) => {
    const url = `${relay.url}/api/session`;
    const ok = await request(url, { body: { accessCode: TEST_SECRETS.CHAT_PASSWORD } });
    assertEquals(ok.status, 200);
    const session = SessionResponse.parse(ok.body);
    assertEquals(Object.keys(ok.body).sort(), ["expiresAt", "maxMessageLength", "token"]);
    assertEquals(session.maxMessageLength, Number(SMALL_LIMITS.MAX_MESSAGE_LENGTH));
    assert(Date.parse(session.expiresAt) > Date.now(), "the token expires in the future");
    assertSecurityHeaders(ok, "session");

    assertError(
      await request(url, { body: { accessCode: "not-the-code" } }),
      401,
      "bad_access_code",
    );
    assertError(await rawPost(url, "{accessCode:"), 400, "malformed_json", "broken JSON");
    assertError(await rawPost(url, ""), 400, "malformed_json", "empty body");
    assertError(await request(url, { body: {} }), 400, "invalid_body", "no accessCode");
    assertError(await request(url, { body: { accessCode: "" } }), 400, "invalid_body", "empty");
    assertError(await request(url, { body: { accessCode: 42 } }), 400, "invalid_body", "number");
    assertError(await request(url, { body: [] }), 400, "invalid_body", "array");
    assertError(
      await request(url, { body: { accessCode: "x".repeat(600) } }),
      400,
      "invalid_body",
      "over-long code",
    );
    assertError(
      await request(url, { body: { accessCode: "x".repeat(3000) } }),
      413,
      "body_too_large",
    );
    assertError(await request(url), 404, "not_found", "GET /api/session");
  });
});

Deno.test("a visitor message is stored and read back in order by the visitor and the worker", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const first = await postMessage(relay.url, token, "chat-read", "  Hello Terra  ");
    assertEquals(first.status, 201);
    const message = ChatMessage.parse(first.body);
    assertEquals(
      [message.chatId, message.sender, message.content],
      ["chat-read", "Visitor", "Hello Terra"],
    );
    assert(!Number.isNaN(Date.parse(message.createdAt)), "createdAt is a time");
    assertSecurityHeaders(first, "POST messages");
    const second = await postMessage(relay.url, token, "chat-read", "Second question");
    assertEquals(second.status, 201);
    assert(second.body.seq > first.body.seq, "sequence numbers grow");

    const asVisitor = await request(`${relay.url}/api/chat/chat-read/messages`, {
      headers: bearer(token),
    });
    assertEquals(asVisitor.status, 200);
    assertEquals(asVisitor.body.map((m: Json) => m.content), ["Hello Terra", "Second question"]);
    assertEquals(asVisitor.body[0], first.body);
    const asWorker = await workerRequest(relay.url, "/api/chat/chat-read/messages");
    assertEquals(asWorker.status, 200);
    assertEquals(asWorker.body, asVisitor.body);

    // Paging: after a sequence number, and a limit.
    const after = await request(
      `${relay.url}/api/chat/chat-read/messages?after=${first.body.seq}`,
      { headers: bearer(token) },
    );
    assertEquals(after.body.map((m: Json) => m.content), ["Second question"]);
    const limited = await request(`${relay.url}/api/chat/chat-read/messages?limit=1`, {
      headers: bearer(token),
    });
    assertEquals(limited.body.map((m: Json) => m.content), ["Hello Terra"]);
    assertError(
      await request(`${relay.url}/api/chat/chat-read/messages?after=-1`, {
        headers: bearer(token),
      }),
      400,
      "bad_query",
    );
    assertError(
      await request(`${relay.url}/api/chat/chat-read/messages?limit=ten`, {
        headers: bearer(token),
      }),
      400,
      "bad_query",
    );
    // A chat nobody wrote to is an empty array, not an error.
    const empty = await request(`${relay.url}/api/chat/never-used/messages`, {
      headers: bearer(token),
    });
    assertEquals([empty.status, empty.body], [200, []]);
  });
});

Deno.test("the visitor message route refuses missing and wrong credentials and bad input", async () => {
  await withRelay(SMALL_LIMITS, async (relay) => {
    const token = await visitorToken(relay.url);
    const url = (chatId: string) => `${relay.url}/api/chat/${chatId}/messages`;

    assertError(await request(url("c1"), { body: { content: "hi" } }), 401, "missing_credentials");
    assertError(
      await request(url("c1"), { body: { content: "hi" }, headers: bearer("not.a-token") }),
      401,
      "bad_token",
    );
    assertError(
      await request(url("c1"), { body: { content: "hi", accessCode: "wrong-code" } }),
      401,
      "bad_access_code",
    );
    assertError(await request(url("c1")), 401, "missing_credentials", "GET without credentials");
    assertError(
      await request(url("c1"), { headers: bearer("garbage") }),
      401,
      "bad_token",
      "GET with a bad token",
    );
    assertError(
      await request(url("c1"), { headers: { "x-service-token": WRONG_SERVICE_TOKEN } }),
      401,
      "bad_service_token",
      "GET with a wrong service token",
    );

    const auth = bearer(token);
    assertError(await rawPost(url("c1"), "{not json", auth), 400, "malformed_json");
    assertError(await rawPost(url("c1"), "", auth), 400, "malformed_json", "empty body");
    for (
      const body of [
        {},
        { content: 42 },
        { content: null },
        { content: ["hi"] },
        { content: "hi", accessCode: 7 },
        [],
        "just a string",
        null,
      ]
    ) {
      assertError(
        await rawPost(url("c1"), JSON.stringify(body), auth),
        400,
        "invalid_body",
        JSON.stringify(body),
      );
    }
    assertError(await postMessage(relay.url, token, "c1", " \n\t "), 400, "empty_message");
    assertError(
      await postMessage(relay.url, token, "c1", "x".repeat(101)),
      413,
      "message_too_long",
    );
    assertEquals((await postMessage(relay.url, token, "c1", "y".repeat(100))).status, 201);
    assertError(await postMessage(relay.url, token, "c1", "z".repeat(3000)), 413, "body_too_large");

    for (const bad of ["bad%20id", "x".repeat(65), "a.b", "%E2%9C%93", "semi%3Bcolon"]) {
      assertError(
        await request(url(bad), { body: { content: "hi" }, headers: auth }),
        400,
        "bad_chat_id",
        `POST ${bad}`,
      );
      assertError(await request(url(bad), { headers: auth }), 400, "bad_chat_id", `GET ${bad}`);
      assertError(
        await request(`${relay.url}/api/chat/${bad}/worker-state`, { headers: auth }),
        400,
        "bad_chat_id",
        `worker-state ${bad}`,
      );
      assertError(
        await request(`${relay.url}/api/chat/${bad}/cancel`, { method: "POST", headers: auth }),
        400,
        "bad_chat_id",
        `cancel ${bad}`,
      );
    }

    // Only the one valid message reached the store and the work queue.
    const history = await request(url("c1"), { headers: auth });
    assertEquals(history.body.map((m: Json) => m.content), ["y".repeat(100)]);
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body, { chatIds: ["c1"] });
  });
});

Deno.test("the visitor socket route needs an upgrade and a valid chat id", async () => {
  await withRelay({}, async (relay) => {
    assertError(
      await request(`${relay.url}/api/chat?chatId=c1`),
      400,
      "websocket_required",
      "plain GET",
    );
    assertError(
      await upgradeRequest(`${relay.url}/api/chat?chatId=bad%20id`),
      400,
      "bad_chat_id",
      "bad chatId",
      UPGRADE,
    );
    assertError(
      await upgradeRequest(`${relay.url}/api/chat`),
      400,
      "bad_chat_id",
      "no chatId",
      UPGRADE,
    );
    const token = await visitorToken(relay.url);
    assertError(
      await upgradeRequest(`${relay.url}/api/chat?chatId=c1&since=minus-one`, bearer(token)),
      400,
      "bad_query",
      "bad since",
      UPGRADE,
    );
  });
});

Deno.test("worker-state and cancel tell a visitor where its turn stands and stop a waiting one", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const stateUrl = `${relay.url}/api/chat/c-cancel/worker-state`;
    const cancelUrl = `${relay.url}/api/chat/c-cancel/cancel`;

    const initial = await request(stateUrl, { headers: bearer(token) });
    assertEquals(initial.status, 200);
    assertEquals([initial.body.type, initial.body.state, initial.body.chatId], [
      "workerState",
      "idle",
      "c-cancel",
    ]);
    assertError(await request(stateUrl), 401, "missing_credentials");
    assertError(await request(stateUrl, { headers: bearer("forged") }), 401, "bad_token");
    assertError(await request(cancelUrl, { method: "POST" }), 401, "missing_credentials");
    assertError(
      await request(cancelUrl, { method: "POST", headers: bearer("forged") }),
      401,
      "bad_token",
    );

    const nothing = await request(cancelUrl, { method: "POST", headers: bearer(token) });
    assertEquals([nothing.status, nothing.body], [200, { cancelled: false }]);

    assertEquals((await postMessage(relay.url, token, "c-cancel", "Question")).status, 201);
    await eventually(async () => {
      const s = await request(stateUrl, { headers: bearer(token) });
      return s.body.state === "queued";
    }, "the queued state");
    // The worker can read the same state with its service token.
    const workerView = await workerRequest(relay.url, "/api/chat/c-cancel/worker-state");
    assertEquals([workerView.status, workerView.body.state], [200, "queued"]);
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds, ["c-cancel"]);

    const cancelled = await request(cancelUrl, { method: "POST", headers: bearer(token) });
    assertEquals([cancelled.status, cancelled.body], [200, { cancelled: true }]);
    const after = await request(stateUrl, { headers: bearer(token) });
    assertEquals(after.body.state, "idle");
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds, []);
    const again = await request(cancelUrl, { method: "POST", headers: bearer(token) });
    assertEquals(again.body, { cancelled: false });
    // The visitor's message is kept.
    const history = await request(`${relay.url}/api/chat/c-cancel/messages`, {
      headers: bearer(token),
    });
    assertEquals(history.body.map((m: Json) => m.content), ["Question"]);
  });
});

// ---------------------------------------------------------------------------------------
// Worker routes

Deno.test("the worker HTTP routes carry a turn from open chat to one stored reply", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const visitor = await visitorSocket(relay.url, "c-work", token);
    const posted = await postMessage(relay.url, token, "c-work", "What is this?");
    assertEquals(posted.status, 201);

    const open = await workerRequest(relay.url, "/api/chats/open");
    assertEquals([open.status, open.body], [200, { chatIds: ["c-work"] }]);
    assertSecurityHeaders(open, "chats/open");

    const claim = await workerRequest(relay.url, "/api/worker/turns/claim", {
      workerId: "w-http",
      chatId: "c-work",
    });
    assertEquals(claim.status, 200);
    const turn = Turn.parse(claim.body.turn);
    assertEquals([turn.chatId, turn.messageId, turn.attempt], ["c-work", posted.body.id, 1]);
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body, { chatIds: [] });
    const none = await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "w-http" });
    assertEquals(none.body, { turn: null });

    const renew = await workerRequest(relay.url, `/api/worker/turns/${turn.id}/renew`, {
      leaseId: turn.leaseId,
    });
    assertEquals(renew.status, 200);
    assertEquals(renew.body.cancelRequested, false);
    assert(Date.parse(renew.body.leaseExpiresAt) > Date.now(), "the lease runs on");
    assertError(
      await workerRequest(relay.url, `/api/worker/turns/${turn.id}/renew`, { leaseId: "other" }),
      409,
      "lease_lost",
    );

    const state = await workerRequest(relay.url, "/api/chat/c-work/worker-state", {
      state: "processing",
      detail: "Thinking",
    });
    assertEquals(state.status, 200);
    assertEquals([state.body.type, state.body.state, state.body.detail], [
      "workerState",
      "processing",
      "Thinking",
    ]);
    const chunk1 = await workerRequest(relay.url, "/api/chat/c-work/agent-chunk", {
      content: "It is ",
      turnId: turn.id,
    });
    assertEquals([chunk1.status, chunk1.body.ok, chunk1.body.offset], [200, true, 0]);
    const chunk2 = await workerRequest(relay.url, "/api/chat/c-work/agent-chunk", {
      content: "a relay.",
      turnId: turn.id,
      done: true,
    });
    assertEquals([chunk2.body.ok, chunk2.body.offset], [true, 6]);
    assert(chunk2.body.seq > chunk1.body.seq, "chunk sequence numbers grow");

    const reply = await workerRequest(relay.url, "/api/chat/c-work/agent", {
      content: "It is a relay.",
      replyTo: turn.id,
      leaseId: turn.leaseId,
    });
    assertEquals(reply.status, 201);
    assertEquals(
      [reply.body.sender, reply.body.content, reply.body.replyTo, reply.body.duplicate],
      ["Terra", "It is a relay.", turn.id, false],
    );
    const again = await workerRequest(relay.url, "/api/chat/c-work/agent", {
      content: "Another answer",
      replyTo: turn.id,
    });
    assertEquals([again.status, again.body.duplicate, again.body.id], [200, true, reply.body.id]);

    // What the visitor saw: the state, both chunks and one reply.
    await visitor.waitFor((es) => es.some((e) => e.type === "message" && e.sender === "Terra"));
    const chunks = visitor.events.filter((e) => e.type === "assistantChunk");
    assertEquals(chunks.map((c) => c.content), ["It is ", "a relay."]);
    assert(
      visitor.events.some((e) => e.type === "workerState" && e.detail === "Thinking"),
      "the visitor saw the worker state",
    );
    const history = await workerRequest(relay.url, "/api/chat/c-work/messages");
    assertEquals(history.body.map((m: Json) => [m.sender, m.content]), [
      ["Visitor", "What is this?"],
      ["Terra", "It is a relay."],
    ]);
    await visitor.close();

    // A released turn is offered again.
    await postMessage(relay.url, token, "c-release", "Another");
    const second = (await workerRequest(relay.url, "/api/worker/turns/claim", {
      workerId: "w-http",
    })).body.turn;
    assertEquals(second.chatId, "c-release");
    const released = await workerRequest(relay.url, `/api/worker/turns/${second.id}/release`, {
      leaseId: second.leaseId,
    });
    assertEquals([released.status, released.body], [200, { ok: true }]);
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds, ["c-release"]);
    assertError(
      await workerRequest(relay.url, "/api/worker/turns/bad%20turn/renew", { leaseId: "x" }),
      400,
      "bad_turn_id",
    );
    assertError(
      await workerRequest(relay.url, "/api/chat/c-work/agent", { content: "x", replyTo: "nope" }),
      404,
      "unknown_turn",
    );
  });
});

Deno.test("every worker route refuses missing and wrong service tokens and bad bodies", async () => {
  await withRelay(SMALL_LIMITS, async (relay) => {
    const token = await visitorToken(relay.url);
    const routes: { path: string; body?: unknown; invalid?: unknown }[] = [
      { path: "/api/chats/open" },
      { path: "/api/chat/c1/agent", body: { content: "x" }, invalid: { content: 1 } },
      {
        path: "/api/chat/c1/agent-chunk",
        body: { content: "x" },
        invalid: { content: "x", done: "yes" },
      },
      {
        path: "/api/chat/c1/worker-state",
        body: { state: "processing" },
        invalid: { state: "dancing" },
      },
      {
        path: "/api/worker/status",
        body: { agentApi: { status: "online" }, llm: { status: "online" } },
        invalid: { agentApi: { status: "great" }, llm: { status: "online" } },
      },
      { path: "/api/worker/turns/claim", body: { workerId: "w" }, invalid: { workerId: "a b" } },
      {
        path: "/api/worker/turns/t1/renew",
        body: { leaseId: "l1" },
        invalid: { leaseId: "bad lease" },
      },
      { path: "/api/worker/turns/t1/release", body: { leaseId: "l1" }, invalid: {} },
    ];
    for (const { path, body, invalid } of routes) {
      const init = body === undefined ? {} : { body };
      assertError(await request(relay.url + path, init), 401, "missing_service_token", path);
      assertError(
        await workerRequest(relay.url, path, body, { token: WRONG_SERVICE_TOKEN }),
        401,
        "bad_service_token",
        path,
      );
      // Neither a visitor's token nor the admin token makes a worker.
      assertError(
        await request(relay.url + path, { ...init, headers: bearer(token) }),
        401,
        "missing_service_token",
        `${path} with a visitor token`,
      );
      assertError(
        await workerRequest(relay.url, path, body, { token: TEST_SECRETS.ADMIN_TOKEN }),
        401,
        "bad_service_token",
        `${path} with the admin token`,
      );
      if (body === undefined) continue;
      assertError(
        await rawPost(relay.url + path, "{oops", SVC),
        400,
        "malformed_json",
        path,
      );
      assertError(
        await workerRequest(relay.url, path, invalid),
        400,
        "invalid_body",
        `${path} ${JSON.stringify(invalid)}`,
      );
      assertError(
        await workerRequest(relay.url, path, { content: "x".repeat(3000) }),
        413,
        "body_too_large",
        path,
      );
    }
    for (const path of ["agent", "agent-chunk", "worker-state"]) {
      assertError(
        await workerRequest(relay.url, `/api/chat/bad%20id/${path}`, { content: "x" }),
        400,
        "bad_chat_id",
        path,
      );
    }
    // None of it reached the store: no chat has a message.
    assertEquals((await workerRequest(relay.url, "/api/chat/c1/messages")).body, []);
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body, { chatIds: [] });
  });
});

// ---------------------------------------------------------------------------------------
// Health, liveness, metrics

Deno.test("/api/health reflects the worker's status report and goes offline when the worker goes quiet", async () => {
  await withRelay({ WORKER_STALE_THRESHOLD_MS: "2000" }, async (relay) => {
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
  await withRelay({}, async (relay) => {
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
  await withRelay({}, async (relay) => {
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
  await withRelay({ ADMIN_TOKEN: "" }, async (relay) => {
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
  await withRelay({ BASE_PATH: "/terrarium", ...SMALL_LIMITS }, async (relay) => {
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
  await withRelay({ ...SMALL_LIMITS, RATE_LIMIT_MAX_PER_CHAT: "1" }, async (relay) => {
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
  await withRelay({ MAX_PENDING_TURNS_PER_CHAT: "2" }, async (relay) => {
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
  await withRelay({}, async (relay) => {
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
