/**
 * Two relays on one Redis (issue 14), each in this process as `relay.ts` wires it, against a
 * real `redis-server`: the lockout, the rate limits and the sockets per client key are
 * counted once for both relays; `/api/health` on one relay sees a worker that talks only to
 * the other; with Redis SIGKILLed both relays answer every request (503 `store_unavailable`
 * where the store is needed, their own limits otherwise) and count globally again once it is
 * back, without a restart.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  assertError,
  bearer,
  chatHistory,
  type Json,
  RecordingSocket,
  request,
  type Res,
  tokenProtocols,
  upgradeRequest,
  visitorSocket,
  visitorToken,
  workerRequest,
} from "./_clients.ts";
import { type InProcessRelay, withAppRelay } from "./_relay_in_process.ts";
import { TEST_SECRETS } from "./_relay_process.ts";
import { type RedisProcess, startRedis } from "./_redis_process.ts";
import { assertRetryAfter, eventually, wsBase } from "./_route_checks.ts";

const RIGHT = TEST_SECRETS.CHAT_PASSWORD;

/** Runs `fn` with relays A and B on one fresh Redis; always stops all three. */
async function withTwoRelays(
  env: Record<string, string>,
  fn: (a: InProcessRelay, b: InProcessRelay, redis: RedisProcess) => Promise<void>,
  options: { durability?: "always" | "none" } = {},
): Promise<void> {
  const redis = await startRedis(options);
  const shared = { REDIS_URL: redis.url, WEB_DIR: "", ...env };
  try {
    await withAppRelay(shared, (a) => withAppRelay(shared, (b) => fn(a, b, redis)));
  } finally {
    await redis.dispose();
  }
}

/** `POST /api/session` from client address `ip` (the relays trust X-Real-IP here). */
function session(relay: InProcessRelay, ip: string, accessCode: string): Promise<Res> {
  return request(`${relay.url}/api/session`, {
    body: { accessCode },
    headers: { "x-real-ip": ip },
  });
}

/** A visitor message from client address `ip`. */
function post(relay: InProcessRelay, token: string, ip: string, chatId: string, content: string) {
  return request(`${relay.url}/api/chat/${chatId}/messages`, {
    body: { content },
    headers: { ...bearer(token), "x-real-ip": ip },
  });
}

async function health(relay: InProcessRelay): Promise<Json> {
  const res = await request(`${relay.url}/api/health`);
  assertEquals(res.status, 200);
  return res.body;
}

const linkOf = (body: Json, id: string) => body.chain.find((l: { id: string }) => l.id === id);

Deno.test("two relays on one Redis: wrong codes on relay A lock the client key out on relay B; other keys are never refused", async () => {
  const env = { TRUST_PROXY: "true", ACCESS_CODE_MAX_FAILURES: "3", RATE_LIMIT_MAX_PER_IP: "1000" };
  await withTwoRelays(env, async (a, b) => {
    const guesser = "198.51.100.7";
    const other = "203.0.113.20";
    assertError(await session(a, guesser, "guess-1"), 401, "bad_access_code");
    assertEquals((await session(b, other, RIGHT)).status, 200);
    assertError(await session(a, guesser, "guess-2"), 401, "bad_access_code");
    assertError(await session(b, guesser, "guess-3"), 401, "bad_access_code", "the third, on B");
    for (const relay of [b, a]) {
      const locked = await session(relay, guesser, RIGHT);
      assertError(locked, 429, "locked_out", relay === a ? "A" : "B");
      assertRetryAfter(locked, 900);
    }
    // The legacy access code on B's routes is judged by the same count.
    const legacy = await request(`${b.url}/api/chat/c-lock/messages`, {
      body: { content: "hi", accessCode: RIGHT },
      headers: { "x-real-ip": guesser },
    });
    assertError(legacy, 429, "locked_out", "legacy");
    for (const relay of [a, b]) assertEquals((await session(relay, other, RIGHT)).status, 200);

    // A burst of parallel guesses from a fresh key over both relays: each relay judges one
    // at a time, so at most maxFailures + 1 (one per extra relay) are judged at all.
    const burst = "198.51.100.8";
    const codes = (await Promise.all(
      Array.from({ length: 20 }, (_, i) => session(i % 2 ? a : b, burst, `burst-${i}`)),
    )).map((res) => res.body.code);
    const judged = codes.filter((code) => code === "bad_access_code").length;
    assert(judged >= 3 && judged <= 4, `judged ${judged}: ${codes}`);
    assert(
      codes.every((code) => ["bad_access_code", "locked_out", "rate_limited"].includes(code)),
      codes.join(),
    );
    assertError(await session(b, burst, RIGHT), 429, "locked_out");
    for (const relay of [a, b]) assertEquals((await session(relay, other, RIGHT)).status, 200);
  });
});

Deno.test("two relays on one Redis: the per-address and per-chat rate limits count both relays together", async () => {
  const env = { TRUST_PROXY: "true", RATE_LIMIT_MAX_PER_IP: "4", RATE_LIMIT_MAX_PER_CHAT: "3" };
  await withTwoRelays(env, async (a, b) => {
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await session(i % 2 ? a : b, "192.0.2.1", RIGHT)).status);
    }
    assertEquals(statuses, [200, 200, 200, 200]);
    for (const relay of [a, b]) {
      const limited = await session(relay, "192.0.2.1", RIGHT);
      assertError(limited, 429, "rate_limited");
      assertRetryAfter(limited, 60);
    }
    assertEquals((await session(b, "192.0.2.2", RIGHT)).status, 200, "another address");

    // Three messages in one chat from three addresses over both relays; the fourth is over.
    const token = (await session(a, "192.0.2.3", RIGHT)).body.token;
    for (let i = 0; i < 3; i++) {
      const posted = await post(i % 2 ? a : b, token, `192.0.2.${10 + i}`, "c-busy", `m${i}`);
      assertEquals(posted.status, 201, JSON.stringify(posted.body));
    }
    const over = await post(a, token, "192.0.2.20", "c-busy", "one too many");
    assertError(over, 429, "rate_limited");
    assertRetryAfter(over, 60);
    assertEquals((await post(b, token, "192.0.2.21", "c-calm", "hello")).status, 201);
    assertEquals((await chatHistory(b.url, token, "c-busy")).length, 3, "nothing stored over it");
  });
});

Deno.test("two relays on one Redis: MAX_SOCKETS_PER_IP counts a client key's sockets on both", async () => {
  await withTwoRelays({ MAX_SOCKETS_PER_IP: "2" }, async (a, b) => {
    const token = await visitorToken(a.url);
    const onA = await visitorSocket(a.url, "c-sockets", token);
    const onB = await visitorSocket(b.url, "c-sockets", token);
    let reopened = null;
    try {
      for (const relay of [a, b]) {
        const refused = await upgradeRequest(`${relay.url}/api/chat?chatId=c-sockets`, {
          ...bearer(token),
        });
        assertError(refused, 429, "too_many_sockets", relay === a ? "A" : "B");
        assertRetryAfter(refused, 5);
      }
      // A socket closed on A frees a place on B (bounded retry: the close is async).
      await onA.close();
      for (let i = 0; i < 50 && !reopened; i++) {
        try {
          reopened = await visitorSocket(b.url, "c-sockets", token);
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      assert(reopened, "the place freed on A is taken on B");
    } finally {
      await onA.close();
      await onB.close();
      await reopened?.close();
    }
  });
});

Deno.test("two relays on one Redis: a worker heard only by relay B is ready in relay A's /api/health", async () => {
  await withTwoRelays({}, async (a, b) => {
    assertEquals((await health(a)).workerReady, false);
    // Heartbeats: any worker request counts; relay B stores it.
    const open = await workerRequest(b.url, "/api/chats/open", undefined, { workerId: "w-b" });
    assertEquals(open.status, 200);
    await eventually(async () => (await health(a)).workerReady === true, "A sees B's worker");
    assertEquals(linkOf(await health(a), "worker").status, "online");

    const report = {
      agentApi: { status: "online", detail: "Agent answers" },
      llm: { status: "degraded", detail: "Slow today" },
    };
    const reported = await workerRequest(b.url, "/api/worker/status", report, { workerId: "w-b" });
    assertEquals(reported.status, 200);
    await eventually(
      async () => linkOf(await health(a), "llm").status === "degraded",
      "A shows the report B received",
    );
    assertEquals((await health(a)).workerStatus.agentApi.detail, "Agent answers");
  });
});

Deno.test("two relays on one Redis, Redis SIGKILLed: clear answers, relays' own limits, no crash, then global again without a restart", async () => {
  const env = { TRUST_PROXY: "true", ACCESS_CODE_MAX_FAILURES: "3", RATE_LIMIT_MAX_PER_IP: "6" };
  await withTwoRelays(env, async (a, b, redis) => {
    const token = (await session(a, "192.0.2.1", RIGHT)).body.token;
    assertEquals((await post(a, token, "192.0.2.1", "c-kill", "Before the outage")).status, 201);

    await redis.kill();
    for (const relay of [a, b]) {
      const refused = await post(relay, token, "192.0.2.2", "c-kill", "During the outage");
      assertError(refused, 503, "store_unavailable");
      assert(Number(refused.headers.get("retry-after")) > 0, "Retry-After");
      const body = await health(relay);
      assertEquals([body.relay, linkOf(body, "relay").status], ["ok", "degraded"]);
    }
    // A visitor socket is let in (this relay's slots still count it) and told to come back
    // when its replay cannot be read: a close with a code, not a hang.
    const socket = new RecordingSocket(
      `${wsBase(a.url)}/api/chat?chatId=c-kill`,
      undefined,
      tokenProtocols(token),
    );
    const code = await socket.waitClosed(5_000);
    assert(code !== null && code !== 1006, `closed with a code, not left hanging: ${code}`);
    // A session needs no store: it is issued, each relay judging by its own counts.
    assertEquals((await session(b, "192.0.2.3", RIGHT)).status, 200);
    for (let i = 0; i < 3; i++) {
      assertError(await session(a, "198.51.100.30", `guess-${i}`), 401, "bad_access_code");
    }
    assertError(await session(a, "198.51.100.30", RIGHT), 429, "locked_out", "A's own lockout");
    const statuses = [];
    for (let i = 0; i < 7; i++) statuses.push((await session(b, "192.0.2.40", RIGHT)).status);
    assertEquals(statuses.at(-1), 429, `B's own rate limit: ${statuses}`);

    await redis.start();
    for (const relay of [a, b]) {
      await eventually(
        async () => linkOf(await health(relay), "relay").status === "online",
        "Redis back",
      );
    }
    const after = await post(b, token, "192.0.2.4", "c-kill", "After the outage");
    assertEquals(after.status, 201, JSON.stringify(after.body));
    assertEquals((await chatHistory(a.url, token, "c-kill")).map((m) => m.content), [
      "Before the outage",
      "After the outage",
    ]);
    // Counted across both relays again.
    assertError(await session(a, "198.51.100.31", "again-1"), 401, "bad_access_code");
    assertError(await session(b, "198.51.100.31", "again-2"), 401, "bad_access_code");
    assertError(await session(a, "198.51.100.31", "again-3"), 401, "bad_access_code");
    assertError(await session(b, "198.51.100.31", RIGHT), 429, "locked_out");
    // The store's own refusals are logged (they are its outage); nothing else went wrong.
    const errors = [...a.lines, ...b.lines].filter((line) => line.includes('"level":"error"'));
    const others = errors.filter((line) => !line.includes('"name":"StoreUnavailableError"'));
    assertEquals(others, []);
  }, { durability: "always" });
});
