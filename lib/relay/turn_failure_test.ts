/**
 * Issue 16 on the relay, through the routes in-process (`app.request()`): a failed turn is
 * an error state on the visitor message, never Terra's words; Retry re-opens it; text cut
 * by a failure is kept as an interrupted reply; replies carry sources; the site words are
 * public, published by the worker and kept in the store across a restart.
 */
import { assert, assertEquals } from "../../tests/_assert.ts";
import { DEFAULT_SITE_PROFILE, type SiteProfile } from "../protocol.ts";
import { Auth } from "./auth.ts";
import { parseRelayConfig } from "./config.ts";
import { relayApp } from "./relay_app.ts";
import { relayDeps } from "./relay_deps.ts";
import { relayLimits } from "./relay_limits.ts";
import { testService } from "./_test_service.ts";

const SERVICE_TOKEN = "svc-0123456789abcdef0123456789abcdef";
const CODE = "open-sesame-42";

// deno-lint-ignore no-explicit-any
type Json = any;

/** A relay app over `kvPath` with the caller's requests as JSON in, JSON out. */
async function relay(kvPath = ":memory:", env: Record<string, string> = {}) {
  const config = parseRelayConfig({
    KV_PATH: kvPath,
    SERVICE_TOKEN,
    CHAT_PASSWORD: CODE,
    WEB_DIR: "",
    RATE_LIMIT_MAX_PER_IP: "1000",
    ...env,
  });
  const started = await testService(config, kvPath);
  const { service, parts } = started;
  const app = relayApp(relayDeps(service, parts, {
    auth: new Auth(config),
    limits: relayLimits(config, null),
    frontendServed: false,
  }));
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json; headers: Headers }> => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] = "application/json";
    }
    const res = await app.request(`http://relay.test${path}`, init);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  };
  const session = await call("POST", "/api/session", { accessCode: CODE });
  const visitor = { authorization: `Bearer ${session.body.token}` };
  const worker = { "x-service-token": SERVICE_TOKEN, "x-worker-id": "w1" };
  return {
    service,
    call,
    visitor,
    worker,
    /** Posts a visitor message and claims its turn as the worker. */
    async ask(chatId: string, content: string) {
      const posted = await call("POST", `/api/chat/${chatId}/messages`, { content }, visitor);
      assertEquals(posted.status, 201);
      const claimed = await call(
        "POST",
        "/api/worker/turns/claim",
        { workerId: "w1", chatId },
        worker,
      );
      assertEquals(claimed.body.turn?.messageId, posted.body.id);
      return claimed.body.turn as { id: string; leaseId: string; messageId: string };
    },
    messages: async (chatId: string) =>
      (await call("GET", `/api/chat/${chatId}/messages`, undefined, visitor)).body as Json[],
    close: started.close,
  };
}

Deno.test("a failed turn is an error on the visitor message, never a Terra message; Retry re-opens it", async () => {
  const r = await relay();
  try {
    const turn = await r.ask("c1", "What does Morgan run at home?");
    const sentence = "Terra's language model is not reachable right now. Please try again.";
    const fail = (body: unknown) =>
      r.call("POST", `/api/worker/turns/${turn.id}/fail`, body, r.worker);
    assertEquals(
      (await fail({ leaseId: "wrong-lease", code: "x", error: "x" })).body.code,
      "lease_lost",
    );
    assertEquals((await fail({ leaseId: turn.leaseId, code: "model_unavailable" })).status, 400);
    const failed = await fail({
      leaseId: turn.leaseId,
      code: "model_unavailable",
      error: sentence,
    });
    assertEquals([failed.status, failed.body], [200, { ok: true, duplicate: false }]);
    const again = await fail({ leaseId: turn.leaseId, code: "model_unavailable", error: sentence });
    assertEquals(again.body, { ok: true, duplicate: true }, "a repeated report is a no-op");

    const stored = await r.messages("c1");
    assertEquals(stored.map((m) => m.sender), ["Visitor"], "no Terra message holds the error");
    assertEquals([stored[0].failure.code, stored[0].failure.error], [
      "model_unavailable",
      sentence,
    ]);
    const state = (await r.call("GET", "/api/chat/c1/worker-state", undefined, r.visitor)).body;
    assertEquals([state.state, state.detail, state.turnId, state.code], [
      "error",
      sentence,
      turn.id,
      "model_unavailable",
    ]);
    assertEquals((await r.call("GET", "/api/chats/open", undefined, r.worker)).body.chatIds, []);
    // A late reply of the failed attempt is refused: it would read as an answer.
    const late = await r.call("POST", "/api/chat/c1/agent", {
      content: "late",
      replyTo: turn.id,
      leaseId: turn.leaseId,
    }, r.worker);
    assertEquals([late.status, late.body.code], [409, "turn_failed"]);

    const retryPath = `/api/chat/c1/messages/${turn.messageId}/retry`;
    assertEquals((await r.call("POST", retryPath)).status, 401, "a retry needs the visitor's auth");
    const retried = await r.call("POST", retryPath, undefined, r.visitor);
    assertEquals([retried.status, retried.body], [202, { ok: true }]);
    assertEquals((await r.messages("c1"))[0].failure, undefined, "the failure is cleared");
    const queued = (await r.call("GET", "/api/chat/c1/worker-state", undefined, r.visitor)).body;
    assertEquals(queued.state, "queued");
    const conflict = await r.call("POST", retryPath, undefined, r.visitor);
    assertEquals([conflict.status, conflict.body.code], [409, "not_failed"]);

    const reclaimed = await r.call("POST", "/api/worker/turns/claim", { workerId: "w1" }, r.worker);
    assertEquals([reclaimed.body.turn.id, reclaimed.body.turn.attempt], [turn.id, 2]);
    const reply = await r.call("POST", "/api/chat/c1/agent", {
      content: "Morgan runs a GPU box.",
      replyTo: turn.id,
      leaseId: reclaimed.body.turn.leaseId,
    }, r.worker);
    assertEquals(reply.status, 201);
    assertEquals((await r.messages("c1")).map((m) => [m.sender, m.content]), [
      ["Visitor", "What does Morgan run at home?"],
      ["Terra", "Morgan runs a GPU box."],
    ]);
    assertEquals((await r.call("POST", retryPath, undefined, r.visitor)).body.code, "not_failed");
    const terraId = (await r.messages("c1"))[1].id;
    const notVisitor = await r.call(
      "POST",
      `/api/chat/c1/messages/${terraId}/retry`,
      undefined,
      r.visitor,
    );
    assertEquals([notVisitor.status, notVisitor.body.code], [404, "unknown_message"]);
    const elsewhere = await r.call(
      "POST",
      `/api/chat/c2/messages/${turn.messageId}/retry`,
      undefined,
      r.visitor,
    );
    assertEquals(elsewhere.status, 404, "a message of another chat is unknown here");
    const malformed = await r.call(
      "POST",
      `/api/chat/c1/messages/${"x".repeat(200)}/retry`,
      "{}",
      r.visitor,
    );
    assertEquals(malformed.status, 404);
  } finally {
    await r.close();
  }
});

Deno.test("text cut by a failure is kept as an interrupted reply; the retry's answer is stored beside it, once", async () => {
  const r = await relay();
  try {
    const turn = await r.ask("c1", "[long 50] Tell me");
    await r.call("POST", "/api/chat/c1/agent-chunk", {
      content: "word1 word2",
      turnId: turn.id,
      leaseId: turn.leaseId,
    }, r.worker);
    const failed = await r.call("POST", `/api/worker/turns/${turn.id}/fail`, {
      leaseId: turn.leaseId,
      code: "stream_cut",
      error: "The connection to Terra's language model broke off mid-answer. Please try again.",
      partial: "word1 word2",
    }, r.worker);
    assertEquals(failed.status, 200);
    let stored = await r.messages("c1");
    assertEquals(stored.map((m) => [m.sender, m.content, m.interrupted, m.stopped]), [
      ["Visitor", "[long 50] Tell me", undefined, undefined],
      ["Terra", "word1 word2", true, undefined],
    ]);
    assertEquals(stored[1].replyTo, turn.id);
    assertEquals(stored[0].failure.code, "stream_cut");

    await r.call("POST", `/api/chat/c1/messages/${turn.messageId}/retry`, "", r.visitor);
    const next = (await r.call("POST", "/api/worker/turns/claim", { workerId: "w1" }, r.worker))
      .body.turn;
    const body = {
      content: "word1 word2 word3",
      replyTo: turn.id,
      leaseId: next.leaseId,
      sources: [{ url: "https://example.com/about", title: "About Morgan", kind: "page" }],
    };
    const first = await r.call("POST", "/api/chat/c1/agent", body, r.worker);
    const repeat = await r.call("POST", "/api/chat/c1/agent", body, r.worker);
    assertEquals([first.status, repeat.status, repeat.body.duplicate], [201, 200, true]);
    assertEquals(repeat.body.id, first.body.id, "a repeated post of one attempt is idempotent");
    stored = await r.messages("c1");
    assertEquals(stored.map((m) => [m.sender, m.content, m.interrupted ?? false]), [
      ["Visitor", "[long 50] Tell me", false],
      ["Terra", "word1 word2", true],
      ["Terra", "word1 word2 word3", false],
    ]);
    assertEquals(stored[2].sources, body.sources);
  } finally {
    await r.close();
  }
});

Deno.test("reply sources must be http(s), at most eight and one per url", async () => {
  const r = await relay();
  try {
    const turn = await r.ask("c1", "Hi?");
    const reply = (sources: unknown) =>
      r.call("POST", "/api/chat/c1/agent", {
        content: "Hello",
        replyTo: turn.id,
        leaseId: turn.leaseId,
        sources,
      }, r.worker);
    const page = (url: string) => ({ url, title: "t", kind: "page" });
    for (
      const bad of [
        [page("javascript:alert(1)")],
        [page("data:text/html,hi")],
        [page("https://a.test/"), page("https://a.test/")],
        Array.from({ length: 9 }, (_, i) => page(`https://a.test/${i}`)),
        [{ url: "https://a.test/", title: "t", kind: "rumour" }],
      ]
    ) {
      const res = await reply(bad);
      assertEquals([res.status, res.body.code], [400, "invalid_body"], JSON.stringify(bad));
    }
    assertEquals((await r.messages("c1")).length, 1, "nothing was stored");
  } finally {
    await r.close();
  }
});

Deno.test("GET /api/site is public and uncached; PUT /api/worker/site needs the service token and survives a restart", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/relay.kv`;
  const profile: SiteProfile = {
    siteName: "Morgan Example",
    assistantName: "Terra",
    gateText: "Terra answers questions about Morgan's site.",
    accessHelp: "Write to Morgan for a code.",
    greeting: "Hi! I'm **Terra**.",
    suggestions: ["What does Morgan run at home?", "What is Lantern?"],
    offlineText: "Terra is asleep; leave a question.",
  };
  try {
    let r = await relay(kvPath);
    const before = await r.call("GET", "/api/site");
    assertEquals([before.status, before.body], [200, DEFAULT_SITE_PROFILE]);
    assertEquals(before.headers.get("cache-control"), "no-cache");
    assertEquals((await r.call("PUT", "/api/worker/site", profile)).status, 401);
    const bad = await r.call("PUT", "/api/worker/site", {
      ...profile,
      suggestions: ["a", "b", "c", "d", "e"],
    }, r.worker);
    assertEquals([bad.status, bad.body.code], [400, "invalid_body"]);
    assertEquals((await r.call("PUT", "/api/worker/site", profile, r.worker)).status, 200);
    assertEquals((await r.call("GET", "/api/site")).body, profile);
    await r.close();

    r = await relay(kvPath);
    assertEquals((await r.call("GET", "/api/site")).body, profile, "kept across a restart");
    assert(DEFAULT_SITE_PROFILE.offlineText.length > 0);
    await r.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a retry re-opens a turn only within the open-turn caps, like a new message", async () => {
  const r = await relay(":memory:", { MAX_OPEN_TURNS_PER_CLIENT: "1" });
  try {
    const turn = await r.ask("c1", "First?");
    await r.call("POST", `/api/worker/turns/${turn.id}/fail`, {
      leaseId: turn.leaseId,
      code: "model_unavailable",
      error: "Down.",
    }, r.worker);
    const other = await r.ask("c2", "Second?");
    const retryPath = `/api/chat/c1/messages/${turn.messageId}/retry`;
    const capped = await r.call("POST", retryPath, undefined, r.visitor);
    assertEquals([capped.status, capped.body.code], [429, "too_many_open_turns"]);
    assert(capped.headers.get("retry-after"), "with Retry-After");
    assertEquals((await r.messages("c1"))[0].failure.code, "model_unavailable", "still failed");
    await r.call("POST", "/api/chat/c2/agent", {
      content: "Answered.",
      replyTo: other.id,
      leaseId: other.leaseId,
    }, r.worker);
    assertEquals((await r.call("POST", retryPath, undefined, r.visitor)).status, 202);
  } finally {
    await r.close();
  }
});
