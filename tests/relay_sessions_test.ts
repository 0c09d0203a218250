/** Visitor credentials: session tokens and the legacy access code switch (in-process relay). */
import { SessionTokens } from "../lib/relay/session_token.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  assertError,
  bearer,
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
import { withAppRelay } from "./_relay_in_process.ts";
import { TEST_SECRETS } from "./_relay_process.ts";
import { flipFirst, storedContents, wsBase } from "./_route_checks.ts";

// ---------------------------------------------------------------------------------------
// Session tokens

Deno.test("the right access code buys a session token that works as a Bearer credential everywhere", async () => {
  await withAppRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const auth = bearer(token);
    const posted = await request(`${relay.url}/api/chat/c-tok/messages`, {
      body: { content: "hello" },
      headers: auth,
    });
    assertEquals(posted.status, 201);
    const history = await request(`${relay.url}/api/chat/c-tok/messages`, { headers: auth });
    assertEquals(history.body.map((m: Json) => m.content), ["hello"]);
    assertEquals(
      (await request(`${relay.url}/api/chat/c-tok/worker-state`, { headers: auth })).status,
      200,
    );
    assertEquals(
      (await request(`${relay.url}/api/chat/c-tok/cancel`, { method: "POST", headers: auth }))
        .body,
      { cancelled: true },
    );

    // On a socket, always in the handshake: a bearer header (non-browser clients) or the
    // token subprotocol (browsers).
    const inHeader = new RecordingSocket(`${wsBase(relay.url)}/api/chat?chatId=c-tok`, auth);
    await inHeader.waitFor((es) => es.some((e) => e.type === "ready"), 10_000, "ready");
    assertEquals(inHeader.events.filter((e) => e.type === "message").length, 1);
    const inSubprotocol = await visitorSocket(relay.url, "c-tok", token);
    assertEquals(inSubprotocol.socket.protocol, "terrarium.v1");
    assertEquals(inSubprotocol.events.filter((e) => e.type === "message").length, 1);
    await Promise.all([inHeader.close(), inSubprotocol.close()]);

    // Two sessions get two different tokens.
    assert((await visitorToken(relay.url)) !== token, "tokens are unique");
  });
});

Deno.test("a wrong access code gets 401 bad_access_code and no token", async () => {
  await withAppRelay({}, async (relay) => {
    for (
      const code of ["wrong", TEST_SECRETS.CHAT_PASSWORD + "x", TEST_SECRETS.CHAT_PASSWORD.slice(1)]
    ) {
      const res = await request(`${relay.url}/api/session`, { body: { accessCode: code } });
      assertError(res, 401, "bad_access_code", code);
      assert(!("token" in res.body), "no token in the refusal");
    }
    assertEquals((await request(`${relay.url}/api/chat/c1/messages`)).status, 401);
  });
});

Deno.test("tampered, garbage, expired and foreign session tokens get 401 bad_token", async () => {
  await withAppRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const [payload, mac] = token.split(".") as [string, string];
    const decoded = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/")));
    const stretched = btoa(JSON.stringify({ ...decoded, exp: decoded.exp + 10 * 365 * 86400 }))
      .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    // Tokens minted with the relay's own key but already expired (the test knows the
    // secrets the key is derived from); a fresh one minted the same way proves the key.
    const minter = new SessionTokens(TEST_SECRETS.SERVICE_TOKEN, TEST_SECRETS.CHAT_PASSWORD, 60);
    const expired = (await minter.issue(Date.now() - 3_600_000)).token;
    const mintedFresh = (await minter.issue()).token;
    const otherCode = new SessionTokens(TEST_SECRETS.SERVICE_TOKEN, "another-code-42", 3600);
    const foreign = (await otherCode.issue()).token;

    const bad: Record<string, string> = {
      "flipped signature": `${payload}.${flipFirst(mac)}`,
      "stretched expiry": `${stretched}.${mac}`,
      "no signature": `${payload}.`,
      "signature only": `.${mac}`,
      "three parts": `${token}.${mac}`,
      "garbage": "garbage",
      "not base64": "!!!.???",
      "too long": `${payload}.${"A".repeat(3000)}`,
      "expired": expired,
      "other access code": foreign,
      "the access code itself": TEST_SECRETS.CHAT_PASSWORD,
      "the service token": TEST_SECRETS.SERVICE_TOKEN,
    };
    for (const [what, forged] of Object.entries(bad)) {
      assertError(
        await request(`${relay.url}/api/chat/c1/messages`, { headers: bearer(forged) }),
        401,
        "bad_token",
        what,
      );
      assertError(
        await request(`${relay.url}/api/chat/c1/messages`, {
          body: { content: "let me in" },
          headers: bearer(forged),
        }),
        401,
        "bad_token",
        `POST with ${what}`,
      );
    }
    assertEquals(
      (await request(`${relay.url}/api/chat/c1/messages`, { headers: bearer(mintedFresh) }))
        .status,
      200,
      "a token minted with the relay's key is accepted, so the expired one failed on expiry",
    );
    // A bad bearer is not rescued by a right access code next to it.
    assertError(
      await request(`${relay.url}/api/chat/c1/messages`, {
        body: { content: "hi", accessCode: TEST_SECRETS.CHAT_PASSWORD },
        headers: bearer("garbage"),
      }),
      401,
      "bad_token",
    );

    // Sockets: a bad token in the bearer header or the subprotocol is a 401 and no socket.
    assertError(
      await upgradeRequest(
        `${relay.url}/api/chat?chatId=c1`,
        bearer(`${payload}.${flipFirst(mac)}`),
      ),
      401,
      "bad_token",
      "socket, bearer",
    );
    assertError(
      await upgradeRequest(`${relay.url}/api/chat?chatId=c1`, {
        "sec-websocket-protocol": tokenProtocols(expired).join(", "),
      }),
      401,
      "bad_token",
      "socket, subprotocol",
    );
    assertEquals(await storedContents(relay.url, "c1"), []);
  });
});

Deno.test("a token from a relay with another access code is refused: changing the code revokes tokens", async () => {
  await withAppRelay({}, async (first) => {
    const token = await visitorToken(first.url);
    await withAppRelay({ CHAT_PASSWORD: "a-different-code-77" }, async (second) => {
      assertError(
        await request(`${second.url}/api/chat/c1/messages`, { headers: bearer(token) }),
        401,
        "bad_token",
      );
      const own = await visitorToken(second.url, "a-different-code-77");
      assertEquals(
        (await request(`${second.url}/api/chat/c1/messages`, { headers: bearer(own) })).status,
        200,
      );
    });
  });
});

Deno.test("a visitor token cannot act as the worker or the operator", async () => {
  await withAppRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    assertEquals((await postMessage(relay.url, token, "c-role", "question")).status, 201);
    assertError(
      await request(`${relay.url}/api/chat/c-role/agent`, {
        body: { content: "a forged Terra answer" },
        headers: bearer(token),
      }),
      401,
      "missing_service_token",
    );
    assertError(
      await workerRequest(relay.url, "/api/chat/c-role/agent", { content: "forged" }, { token }),
      401,
      "bad_service_token",
    );
    assertError(
      await request(`${relay.url}/api/admin/transcripts`, { headers: bearer(token) }),
      401,
      "bad_admin_token",
    );
    assertEquals((await request(`${relay.url}/metrics`, { headers: bearer(token) })).status, 401);
    const worker = new RecordingSocket(`${wsBase(relay.url)}/api/worker/updates`, bearer(token));
    await worker.opened.catch(() => {});
    await worker.close();
    assertEquals(worker.events, [], "no worker socket for a visitor token");
    assertEquals(await storedContents(relay.url, "c-role"), ["question"]);
  });
});

// ---------------------------------------------------------------------------------------
// Legacy access code

Deno.test("with LEGACY_ACCESS_CODE=false the access code in a body, query or header is refused but tokens work", async () => {
  await withAppRelay({ LEGACY_ACCESS_CODE: "false" }, async (relay) => {
    const code = TEST_SECRETS.CHAT_PASSWORD;
    const url = `${relay.url}/api/chat/c-legacy/messages`;
    assertError(
      await request(url, { body: { content: "hi", accessCode: code } }),
      401,
      "legacy_access_code_disabled",
      "body",
    );
    assertError(
      await request(`${url}?accessCode=${code}`, { body: { content: "hi" } }),
      401,
      "legacy_access_code_disabled",
      "query",
    );
    assertError(
      await request(url, { body: { content: "hi" }, headers: { "x-access-code": code } }),
      401,
      "legacy_access_code_disabled",
      "header",
    );
    assertError(
      await request(`${url}?accessCode=${code}`),
      401,
      "legacy_access_code_disabled",
      "GET query",
    );
    assertError(
      await request(`${relay.url}/api/chat/c-legacy/worker-state`, {
        headers: { "x-access-code": code },
      }),
      401,
      "legacy_access_code_disabled",
      "worker-state header",
    );
    assertError(
      await upgradeRequest(`${relay.url}/api/chat?chatId=c-legacy&accessCode=${code}`),
      401,
      "legacy_access_code_disabled",
      "socket query",
    );
    assertEquals(await storedContents(relay.url, "c-legacy"), []);

    // The session route still takes the code; its token works everywhere.
    const token = await visitorToken(relay.url);
    assertEquals((await postMessage(relay.url, token, "c-legacy", "with a token")).status, 201);
    const socket = await visitorSocket(relay.url, "c-legacy", token);
    assertEquals(socket.events.filter((e) => e.type === "message").length, 1);
    await socket.close();
    assertEquals(await storedContents(relay.url, "c-legacy"), ["with a token"]);
  });
});

Deno.test("by default the access code is accepted in the message body, query and header", async () => {
  await withAppRelay({}, async (relay) => {
    const code = TEST_SECRETS.CHAT_PASSWORD;
    const url = `${relay.url}/api/chat/c-old/messages`;
    const posted = await request(url, { body: { content: "from the old page", accessCode: code } });
    assertEquals([posted.status, posted.body.sender], [201, "Visitor"]);
    const viaQuery = await request(`${url}?accessCode=${code}`);
    assertEquals(viaQuery.body.map((m: Json) => m.content), ["from the old page"]);
    const viaHeader = await request(url, { headers: { "x-access-code": code } });
    assertEquals(viaHeader.status, 200);
    assertError(
      await request(url, { body: { content: "x", accessCode: "wrong-code" } }),
      401,
      "bad_access_code",
    );
    assertError(await request(`${url}?accessCode=wrong-code`), 401, "bad_access_code");

    const legacySocket = new RecordingSocket(
      `${wsBase(relay.url)}/api/chat?chatId=c-old&accessCode=${code}`,
    );
    // The original page's socket gets the original frames: the message itself, no `ready`.
    await legacySocket.waitFor((es) => es.some((e) => e.type === "workerState"), 10_000, "state");
    assertEquals(legacySocket.events.filter((e) => e.sender === "Visitor").length, 1);
    assertEquals(legacySocket.events.filter((e) => e.type === "ready"), []);
    await legacySocket.close();
    assertError(
      await upgradeRequest(`${relay.url}/api/chat?chatId=c-old&accessCode=wrong-code`),
      401,
      "bad_access_code",
      "socket",
    );
    assertEquals(await storedContents(relay.url, "c-old"), ["from the old page"]);
  });
});
