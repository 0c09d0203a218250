/** The access-code lockout and the per-address and per-chat rate limits (in-process relay). */
import { assert, assertEquals } from "./_assert.ts";
import {
  assertError,
  bearer,
  postMessage,
  request,
  upgradeRequest,
  visitorToken,
  workerRequest,
} from "./_clients.ts";
import { withAppRelay } from "./_relay_in_process.ts";
import { TEST_SECRETS } from "./_relay_process.ts";
import { assertRetryAfter, storedContents } from "./_route_checks.ts";

// ---------------------------------------------------------------------------------------
// Lockout

Deno.test("wrong access code five times locks the address out, even for the right code", async () => {
  await withAppRelay({ TRUST_PROXY: "false" }, async (relay) => {
    const earlier = await visitorToken(relay.url);
    for (let i = 0; i < 5; i++) {
      // Spoofed forwarding headers do not help: TRUST_PROXY is off.
      const res = await request(`${relay.url}/api/session`, {
        body: { accessCode: `guess-${i}` },
        headers: { "x-forwarded-for": `198.51.100.${i}`, "x-real-ip": `198.51.100.${i}` },
      });
      assertError(res, 401, "bad_access_code", `attempt ${i + 1}`);
    }
    const locked = await request(`${relay.url}/api/session`, {
      body: { accessCode: TEST_SECRETS.CHAT_PASSWORD },
    });
    assertError(locked, 429, "locked_out");
    assertRetryAfter(locked, 900);
    assert(!("token" in locked.body));

    // The legacy paths are locked too.
    const legacy = await request(`${relay.url}/api/chat/c-lock/messages`, {
      body: { content: "hi", accessCode: TEST_SECRETS.CHAT_PASSWORD },
    });
    assertError(legacy, 429, "locked_out");
    assertRetryAfter(legacy, 900);
    const legacySocket = await upgradeRequest(
      `${relay.url}/api/chat?chatId=c-lock&accessCode=${TEST_SECRETS.CHAT_PASSWORD}`,
    );
    assertError(legacySocket, 429, "locked_out", "socket");

    // A token issued before the lockout keeps working: the lockout stops guessing only.
    assertEquals((await postMessage(relay.url, earlier, "c-lock", "still here")).status, 201);
    assertEquals(await storedContents(relay.url, "c-lock"), ["still here"]);
  });
});

Deno.test("ACCESS_CODE_MAX_FAILURES sets the lockout threshold, counted per client address", async () => {
  await withAppRelay({ ACCESS_CODE_MAX_FAILURES: "2", TRUST_PROXY: "true" }, async (relay) => {
    const from = (ip: string, accessCode: string) =>
      request(`${relay.url}/api/session`, { body: { accessCode }, headers: { "x-real-ip": ip } });
    assertError(await from("203.0.113.7", "guess-a"), 401, "bad_access_code");
    assertEquals((await from("203.0.113.7", TEST_SECRETS.CHAT_PASSWORD)).status, 200);
    assertError(await from("203.0.113.7", "guess-b"), 401, "bad_access_code");
    const locked = await from("203.0.113.7", TEST_SECRETS.CHAT_PASSWORD);
    assertError(locked, 429, "locked_out");
    assertRetryAfter(locked, 900);
    // Another address is not affected.
    assertEquals((await from("203.0.113.8", TEST_SECRETS.CHAT_PASSWORD)).status, 200);
    // Wrong codes in message bodies count toward the lockout too.
    const body = (ip: string, accessCode: string) =>
      request(`${relay.url}/api/chat/c1/messages`, {
        body: { content: "hi", accessCode },
        headers: { "x-real-ip": ip },
      });
    assertError(await body("203.0.113.9", "guess-c"), 401, "bad_access_code");
    assertError(await body("203.0.113.9", "guess-d"), 401, "bad_access_code");
    assertError(await from("203.0.113.9", TEST_SECRETS.CHAT_PASSWORD), 429, "locked_out");
  });
});

// ---------------------------------------------------------------------------------------
// Rate limits

Deno.test("the per-address rate limit answers 429 rate_limited with Retry-After and stores nothing", async () => {
  await withAppRelay(
    {
      RATE_LIMIT_MAX_PER_IP: "4",
      RATE_LIMIT_WINDOW_MS: "60000",
      MAX_PENDING_TURNS_PER_CHAT: "10",
      TRUST_PROXY: "false",
    },
    async (relay) => {
      const token = await visitorToken(relay.url); // hit 1
      for (const chatId of ["ip-a", "ip-b", "ip-c"]) { // hits 2-4
        assertEquals((await postMessage(relay.url, token, chatId, "ok")).status, 201, chatId);
      }
      const limited = await postMessage(relay.url, token, "ip-d", "one too many");
      assertError(limited, 429, "rate_limited");
      assertRetryAfter(limited, 60);
      const session = await request(`${relay.url}/api/session`, {
        body: { accessCode: TEST_SECRETS.CHAT_PASSWORD },
      });
      assertError(session, 429, "rate_limited", "session from the same address");
      assertRetryAfter(session, 60);
      const cancel = await request(`${relay.url}/api/chat/ip-a/cancel`, {
        method: "POST",
        headers: bearer(token),
      });
      assertError(cancel, 429, "rate_limited", "cancel from the same address");
      // Spoofed forwarding headers do not reset the budget: TRUST_PROXY is off.
      assertError(
        await request(`${relay.url}/api/chat/ip-e/messages`, {
          body: { content: "spoofed" },
          headers: { ...bearer(token), "x-forwarded-for": "192.0.2.1", "x-real-ip": "192.0.2.1" },
        }),
        429,
        "rate_limited",
      );

      assertEquals(await storedContents(relay.url, "ip-d"), []);
      assertEquals(await storedContents(relay.url, "ip-e"), []);
      const open = await workerRequest(relay.url, "/api/chats/open");
      assertEquals([...open.body.chatIds].sort(), ["ip-a", "ip-b", "ip-c"]);
      // Reading is not rate limited.
      assertEquals(
        (await request(`${relay.url}/api/chat/ip-a/messages`, { headers: bearer(token) })).status,
        200,
      );
    },
  );
});

Deno.test("the per-chat rate limit holds across addresses and leaves other chats alone", async () => {
  await withAppRelay(
    {
      RATE_LIMIT_MAX_PER_CHAT: "2",
      RATE_LIMIT_MAX_PER_IP: "100",
      MAX_PENDING_TURNS_PER_CHAT: "10",
      TRUST_PROXY: "true",
    },
    async (relay) => {
      const token = await visitorToken(relay.url);
      const post = (chatId: string, ip: string, content: string) =>
        request(`${relay.url}/api/chat/${chatId}/messages`, {
          body: { content },
          headers: { ...bearer(token), "x-real-ip": ip },
        });
      assertEquals((await post("busy", "192.0.2.1", "one")).status, 201);
      assertEquals((await post("busy", "192.0.2.2", "two")).status, 201);
      const limited = await post("busy", "192.0.2.3", "three");
      assertError(limited, 429, "rate_limited");
      assertRetryAfter(limited, 60);
      assertEquals((await post("quiet", "192.0.2.3", "elsewhere")).status, 201);
      assertEquals(await storedContents(relay.url, "busy"), ["one", "two"]);
    },
  );
});

Deno.test("with TRUST_PROXY the per-address limit follows X-Real-IP", async () => {
  await withAppRelay(
    { RATE_LIMIT_MAX_PER_IP: "2", TRUST_PROXY: "true", MAX_PENDING_TURNS_PER_CHAT: "10" },
    async (relay) => {
      const token = await visitorToken(relay.url); // counted for 127.0.0.1
      const post = (ip: string, chatId: string) =>
        request(`${relay.url}/api/chat/${chatId}/messages`, {
          body: { content: "hi" },
          headers: { ...bearer(token), "x-real-ip": ip },
        });
      assertEquals((await post("192.0.2.10", "p1")).status, 201);
      assertEquals((await post("192.0.2.10", "p2")).status, 201);
      assertError(await post("192.0.2.10", "p3"), 429, "rate_limited");
      assertEquals((await post("192.0.2.11", "p4")).status, 201);
    },
  );
});
