/**
 * The visitor HTTP routes of SPEC §3 (in-process relay): the happy path, missing and wrong
 * credentials, malformed and schema-invalid bodies, size limits, bad chat ids; every error
 * exactly `{error, code}` JSON with the security headers.
 */
import { ChatMessage, SessionResponse } from "../lib/protocol.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  bearer,
  type Json,
  postMessage,
  request,
  upgradeRequest,
  visitorToken,
  workerRequest,
} from "./_clients.ts";
import { withAppRelay } from "./_relay_in_process.ts";
import { TEST_SECRETS } from "./_relay_process.ts";
import {
  assertRouteError as assertError,
  assertSecurityHeaders,
  eventually,
  rawPost,
  SMALL_LIMITS,
  UPGRADE,
  WRONG_SERVICE_TOKEN,
} from "./_route_checks.ts";

// ---------------------------------------------------------------------------------------
// Visitor routes

Deno.test("POST /api/session issues an expiring token for the right code and refuses bad bodies", async () => {
  await withAppRelay(SMALL_LIMITS, async (relay) => {
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
  await withAppRelay({}, async (relay) => {
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
  await withAppRelay(SMALL_LIMITS, async (relay) => {
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
  await withAppRelay({}, async (relay) => {
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
  await withAppRelay({}, async (relay) => {
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
