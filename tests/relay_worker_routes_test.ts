/**
 * The worker HTTP routes of SPEC §3 (in-process relay): a turn from open chat to one stored reply,
 * and every refusal.
 */
import { Turn } from "../lib/protocol.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  bearer,
  type Json,
  postMessage,
  request,
  visitorSocket,
  visitorToken,
  workerRequest,
} from "./_clients.ts";
import { withAppRelay } from "./_relay_in_process.ts";
import { TEST_SECRETS } from "./_relay_process.ts";
import {
  assertRouteError as assertError,
  assertSecurityHeaders,
  rawPost,
  SMALL_LIMITS,
  SVC,
  WRONG_SERVICE_TOKEN,
} from "./_route_checks.ts";

// ---------------------------------------------------------------------------------------
// Worker routes

Deno.test("the worker HTTP routes carry a turn from open chat to one stored reply", async () => {
  await withAppRelay({}, async (relay) => {
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
  await withAppRelay(SMALL_LIMITS, async (relay) => {
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
