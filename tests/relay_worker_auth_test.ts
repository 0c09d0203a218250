/**
 * Worker credentials: HMAC signing of requests and the worker socket handshake (in-process relay).
 */
import { signRequest } from "../lib/hmac.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  assertError,
  bearer,
  postMessage,
  RecordingSocket,
  request,
  upgradeRequest,
  visitorToken,
  workerRequest,
  workerSocket,
} from "./_clients.ts";
import { withAppRelay } from "./_relay_in_process.ts";
import { closeCodeOf, HMAC_SECRET, SVC, wsBase } from "./_route_checks.ts";

// ---------------------------------------------------------------------------------------
// HMAC

Deno.test("with HMAC on, signed worker requests pass; unsigned, forged, replayed and stale ones get bad_signature", async () => {
  await withAppRelay({ HMAC_ENABLED: "true", HMAC_SECRET }, async (relay) => {
    const token = await visitorToken(relay.url); // visitors never sign
    assertEquals((await postMessage(relay.url, token, "c-hmac", "question")).status, 201);
    const signed = { hmacSecret: HMAC_SECRET };

    const open = await workerRequest(relay.url, "/api/chats/open", undefined, signed);
    assertEquals([open.status, open.body], [200, { chatIds: ["c-hmac"] }]);
    const state = await workerRequest(
      relay.url,
      "/api/chat/c-hmac/worker-state",
      { state: "processing", detail: "signed" },
      signed,
    );
    assertEquals([state.status, state.body.state], [200, "processing"]);
    const history = await workerRequest(relay.url, "/api/chat/c-hmac/messages", undefined, signed);
    assertEquals(history.status, 200);

    assertError(
      await workerRequest(relay.url, "/api/chats/open"),
      401,
      "bad_signature",
      "unsigned",
    );
    assertError(
      await workerRequest(relay.url, "/api/chat/c-hmac/messages"),
      401,
      "bad_signature",
      "unsigned history read",
    );
    assertError(
      await workerRequest(relay.url, "/api/chats/open", undefined, {
        hmacSecret: "not-the-secret-0123456789abcdef",
      }),
      401,
      "bad_signature",
      "wrong secret",
    );

    // Replay: the very same signed headers, sent twice.
    const once = await signRequest(HMAC_SECRET, "GET", "/api/chats/open");
    assertEquals(
      (await request(`${relay.url}/api/chats/open`, { headers: { ...SVC, ...once } })).status,
      200,
    );
    assertError(
      await request(`${relay.url}/api/chats/open`, { headers: { ...SVC, ...once } }),
      401,
      "bad_signature",
      "replayed",
    );
    // Stale and future timestamps.
    for (const offsetMs of [-3_600_000, 3_600_000]) {
      const headers = await signRequest(
        HMAC_SECRET,
        "GET",
        "/api/chats/open",
        new Uint8Array(),
        Date.now() + offsetMs,
      );
      assertError(
        await request(`${relay.url}/api/chats/open`, { headers: { ...SVC, ...headers } }),
        401,
        "bad_signature",
        `timestamp off by ${offsetMs} ms`,
      );
    }
    // Re-targeted: signed for one path, sent to another.
    const forOpen = await signRequest(HMAC_SECRET, "GET", "/api/chats/open");
    assertError(
      await request(`${relay.url}/api/chat/c-hmac/messages`, { headers: { ...SVC, ...forOpen } }),
      401,
      "bad_signature",
      "another path",
    );
    // Altered body: the signature covers the raw body, and nothing of it is applied.
    const body = JSON.stringify({ state: "processing" });
    const sig = await signRequest(
      HMAC_SECRET,
      "POST",
      "/api/chat/c-hmac/worker-state",
      new TextEncoder().encode(body),
    );
    assertError(
      await request(`${relay.url}/api/chat/c-hmac/worker-state`, {
        method: "POST",
        rawBody: JSON.stringify({ state: "error", detail: "tampered" }),
        headers: { ...SVC, ...sig, "content-type": "application/json" },
      }),
      401,
      "bad_signature",
      "altered body",
    );
    const current = await request(`${relay.url}/api/chat/c-hmac/worker-state`, {
      headers: bearer(token),
    });
    assertEquals([current.body.state, current.body.detail], ["processing", "signed"]);
    // A signature does not replace the service token.
    const noToken = await signRequest(HMAC_SECRET, "GET", "/api/chats/open");
    assertError(
      await request(`${relay.url}/api/chats/open`, { headers: noToken }),
      401,
      "missing_service_token",
    );
    assertError(
      await workerRequest(relay.url, "/api/chats/open", undefined, {
        ...signed,
        token: "svc-wrong-0123456789abcdef0123456789",
      }),
      401,
      "bad_service_token",
    );
    // A malformed timestamp header.
    const malformed = { ...(await signRequest(HMAC_SECRET, "GET", "/api/chats/open")) };
    malformed["x-terrarium-timestamp"] = "soon";
    assertError(
      await request(`${relay.url}/api/chats/open`, { headers: { ...SVC, ...malformed } }),
      401,
      "bad_signature",
      "malformed timestamp",
    );
  });
});

Deno.test("with HMAC and BASE_PATH the signature covers the full path under the prefix", async () => {
  await withAppRelay(
    { HMAC_ENABLED: "true", HMAC_SECRET, BASE_PATH: "/terrarium" },
    async (relay) => {
      const base = `${relay.url}/terrarium`;
      const ok = await workerRequest(base, "/api/chats/open", undefined, {
        hmacSecret: HMAC_SECRET,
      });
      assertEquals(ok.status, 200);
      // Signed for the path without the prefix, sent under the prefix.
      const short = await signRequest(HMAC_SECRET, "GET", "/api/chats/open");
      assertError(
        await request(`${base}/api/chats/open`, { headers: { ...SVC, ...short } }),
        401,
        "bad_signature",
      );
    },
  );
});

// ---------------------------------------------------------------------------------------
// Worker socket handshake

Deno.test("the worker socket handshake needs the service token before the upgrade", async () => {
  await withAppRelay({}, async (relay) => {
    const url = `${relay.url}/api/worker/updates`;
    assertError(await upgradeRequest(url), 401, "missing_service_token");
    assertError(
      await upgradeRequest(url, { "x-service-token": "svc-wrong-0123456789abcdef0123456789" }),
      401,
      "bad_service_token",
    );
    for (const headers of [undefined, { "x-service-token": "svc-wrong-0123456789abcdef012" }]) {
      const refused = new RecordingSocket(`${wsBase(relay.url)}/api/worker/updates`, headers);
      let failed = false;
      await refused.opened.catch(() => failed = true);
      assert(failed, "the handshake fails");
      await refused.close();
      assertEquals(refused.events, []);
    }
    const token = await visitorToken(relay.url);
    await postMessage(relay.url, token, "c-ws", "hello");
    const worker = await workerSocket(relay.url);
    const hello = worker.events.find((e) => e.type === "hello");
    assert(hello.leaseMs > 0 && hello.maxFrameBytes > 0, JSON.stringify(hello));
    await worker.close();

    // A browser page on another site cannot open the worker socket, even with the token.
    const foreign = new RecordingSocket(`${wsBase(relay.url)}/api/worker/updates`, {
      ...SVC,
      origin: "https://evil.example",
    });
    assertEquals(await closeCodeOf(foreign), 1008);
    assertEquals(foreign.events, []);
  });
});

Deno.test("with HMAC on, the worker socket handshake must be signed to do work", async () => {
  await withAppRelay({ HMAC_ENABLED: "true", HMAC_SECRET }, async (relay) => {
    const path = "/api/worker/updates?workerId=w-signed";
    const forged = await signRequest("not-the-secret", "GET", path);
    assertError(
      await upgradeRequest(relay.url + path, { ...SVC, ...forged }),
      401,
      "bad_signature",
    );
    // An unsigned handshake (the original worker never signed it) only listens.
    const listener = new RecordingSocket(wsBase(relay.url) + path, SVC);
    await listener.waitFor((es) => es.some((e) => e.type === "hello"), 10_000, "hello");
    listener.send({ type: "claim", requestId: "r1", workerId: "w-unsigned" });
    const nack = await listener.waitFor((es) => es.some((e) => e.type === "ack"), 10_000, "ack");
    assertEquals(
      nack.filter((e) => e.type === "ack").map((e) => [e.ok, e.code]),
      [[false, "not_signed"]],
    );
    await listener.close();
    const headers = { ...SVC, ...(await signRequest(HMAC_SECRET, "GET", path)) };
    const worker = new RecordingSocket(wsBase(relay.url) + path, headers);
    await worker.waitFor((es) => es.some((e) => e.type === "hello"), 10_000, "hello");
    await worker.close();
    // The same signed handshake cannot be replayed.
    assertError(await upgradeRequest(relay.url + path, headers), 401, "bad_signature");
  });
});
