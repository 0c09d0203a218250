/**
 * The visitor socket: handshake credentials, Origin, frame size and junk, sockets per chat (in-
 * process relay).
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  assertError,
  bearer,
  postMessage,
  RecordingSocket,
  tokenProtocols,
  upgradeRequest,
  visitorSocket,
  visitorToken,
  workerCall,
  workerSocket,
} from "./_clients.ts";
import { withAppRelay } from "./_relay_in_process.ts";
import { TEST_SECRETS } from "./_relay_process.ts";
import { closeCodeOf, wsBase } from "./_route_checks.ts";

// ---------------------------------------------------------------------------------------
// Visitor socket

Deno.test("a visitor socket from another site's Origin is closed with 1008 even with valid credentials", async () => {
  await withAppRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    await postMessage(relay.url, token, "c-origin", "private words");
    const url = `${wsBase(relay.url)}/api/chat?chatId=c-origin`;

    for (const origin of ["https://evil.example", "null", "http://127.0.0.1.evil.example"]) {
      const withBearer = new RecordingSocket(url, { origin, ...bearer(token) });
      assertEquals(await closeCodeOf(withBearer), 1008, origin);
      assertEquals(withBearer.events, [], `${origin}: nothing delivered`);
    }
    const withCode = new RecordingSocket(`${url}&accessCode=${TEST_SECRETS.CHAT_PASSWORD}`, {
      origin: "https://evil.example",
    });
    assertEquals(await closeCodeOf(withCode), 1008);
    assertEquals(withCode.events, []);
    const withSubprotocol = new RecordingSocket(
      url,
      { origin: "https://evil.example" },
      tokenProtocols(token),
    );
    assertEquals(await closeCodeOf(withSubprotocol), 1008);
    assertEquals(withSubprotocol.events, []);
    // Without credentials a foreign page gets no socket at all: credentials are judged first.
    assertError(
      await upgradeRequest(url.replace("ws", "http"), { origin: "https://evil.example" }),
      401,
      "missing_credentials",
    );

    // The relay's own origin (the default allow list) and no Origin at all are fine.
    const own = new RecordingSocket(url, { origin: relay.url }, tokenProtocols(token));
    await own.waitFor((es) => es.some((e) => e.type === "ready"), 10_000, "ready (own origin)");
    assertEquals(own.events.filter((e) => e.type === "message").length, 1);
    const noOrigin = await visitorSocket(relay.url, "c-origin", token);
    assertEquals(noOrigin.events.filter((e) => e.type === "message").length, 1);
    await Promise.all([own.close(), noOrigin.close()]);
  });
});

Deno.test("ALLOWED_ORIGINS admits the listed origins and only those", async () => {
  await withAppRelay(
    { ALLOWED_ORIGINS: "https://chat.example, https://www.chat.example" },
    async (relay) => {
      const token = await visitorToken(relay.url);
      const url = `${wsBase(relay.url)}/api/chat?chatId=c-allowed`;
      for (const origin of ["https://chat.example", "https://www.chat.example"]) {
        const socket = new RecordingSocket(url, { origin }, tokenProtocols(token));
        await socket.waitFor((es) => es.some((e) => e.type === "ready"), 10_000, origin);
        await socket.close();
      }
      for (const origin of ["https://evil.example", relay.url, "http://chat.example"]) {
        const socket = new RecordingSocket(url, { origin, ...bearer(token) });
        assertEquals(await closeCodeOf(socket), 1008, origin);
        assertEquals(socket.events, [], origin);
      }
    },
  );
});

Deno.test("a frame larger than MAX_WS_FRAME_BYTES closes the socket with 1009", async () => {
  await withAppRelay({ MAX_WS_FRAME_BYTES: "1kb", BODY_SIZE_LIMIT: "2kb" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const url = `${wsBase(relay.url)}/api/chat?chatId=c-big`;

    const authed = await visitorSocket(relay.url, "c-big", token);
    authed.socket.send(JSON.stringify({ type: "ping", pad: "x".repeat(1100) }));
    assertEquals(await closeCodeOf(authed), 1009);

    // A legacy access-code socket is capped the same way.
    const legacy = new RecordingSocket(`${url}&accessCode=${TEST_SECRETS.CHAT_PASSWORD}`);
    await legacy.opened;
    legacy.socket.send("x".repeat(4096));
    assertEquals(await closeCodeOf(legacy), 1009);

    const binary = await visitorSocket(relay.url, "c-big", token);
    binary.socket.send(new Uint8Array(2048));
    assertEquals(await closeCodeOf(binary), 1009);

    // Bytes, not characters: 700 two-byte characters are 1400 bytes.
    const multibyte = await visitorSocket(relay.url, "c-big", token);
    multibyte.socket.send(JSON.stringify({ type: "ping", pad: "é".repeat(700) }));
    assertEquals(await closeCodeOf(multibyte), 1009);

    // Just under the limit is not closed.
    const small = await visitorSocket(relay.url, "c-big", token);
    small.socket.send("y".repeat(1000));
    await small.waitFor((es) => es.some((e) => e.type === "error"), 10_000, "error event");
    small.send({ type: "ping" });
    await small.waitFor((es) => es.some((e) => e.type === "pong"), 10_000, "pong");
    assertEquals(small.closeCode, null);
    await small.close();

    // The worker socket caps frames at the larger of the frame and body limits (2 KiB).
    const worker = await workerSocket(relay.url);
    worker.socket.send(JSON.stringify({ type: "ping", pad: "z".repeat(3000) }));
    assertEquals(await closeCodeOf(worker), 1009);
  });
});

Deno.test("a visitor socket without credentials in its handshake never opens and sees nothing", async () => {
  await withAppRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const url = `${wsBase(relay.url)}/api/chat?chatId=c-unauth`;
    const watcher = await visitorSocket(relay.url, "c-unauth", token);
    for (
      const protocols of [undefined, ["terrarium.v1"], ["terrarium.v1", "terrarium.token.forged.x"]]
    ) {
      const stranger = new RecordingSocket(url, undefined, protocols);
      let failed = false;
      await stranger.opened.catch(() => failed = true);
      assert(failed, `no socket for ${JSON.stringify(protocols)}`);
      await stranger.close();
      assertEquals(stranger.events, []);
    }
    await postMessage(relay.url, token, "c-unauth", "not for strangers");
    await watcher.waitFor((es) => es.some((e) => e.type === "message"), 10_000, "message");
    await watcher.close();
  });
});

Deno.test("a garbage frame gets an error event and the socket stays usable, up to the fifth", async () => {
  await withAppRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const socket = await visitorSocket(relay.url, "c-garbage", token);
    const errors = () => socket.events.filter((e) => e.type === "error");
    socket.socket.send("}{ not json");
    socket.send({ type: "auth", token }); // credentials belong in the handshake now
    socket.send({ type: "shout", loud: true });
    socket.send({ type: "auth", token: 42 });
    await socket.waitFor(
      (es) => es.filter((e) => e.type === "error").length === 4,
      10_000,
      "errors",
    );
    for (const error of errors()) {
      assertEquals(Object.keys(error).sort(), ["code", "error", "type"]);
      assertEquals(error.code, "bad_event");
    }
    await postMessage(relay.url, token, "c-garbage", "still listening?");
    await socket.waitFor(
      (es) => es.some((e) => e.type === "message" && e.content === "still listening?"),
      10_000,
      "message",
    );
    assertEquals(socket.closeCode, null);
    // The fifth bad frame closes the socket: junk is not answered without end.
    socket.socket.send("more garbage");
    assertEquals(await socket.waitClosed(), 1008);
    assertEquals(socket.closeReason, "Too many bad frames");
    assertEquals(errors().length, 4);

    // The worker socket answers garbage the same way and keeps working.
    const worker = await workerSocket(relay.url);
    worker.socket.send("not json");
    worker.send({ type: "claim" });
    await worker.waitFor(
      (es) => es.filter((e) => e.type === "error").length === 2,
      10_000,
      "errors",
    );
    const claim = await workerCall(worker, { type: "claim", workerId: "w-garbage" });
    assertEquals([claim.ok, claim.result.turn.chatId], [true, "c-garbage"]);
    await worker.close();
  });
});

Deno.test("MAX_SOCKETS_PER_CHAT refuses one socket too many with 1013", async () => {
  await withAppRelay({ MAX_SOCKETS_PER_CHAT: "2" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const first = await visitorSocket(relay.url, "c-full", token);
    const second = await visitorSocket(relay.url, "c-full", token);
    const third = new RecordingSocket(`${wsBase(relay.url)}/api/chat?chatId=c-full`, bearer(token));
    assertEquals(await closeCodeOf(third), 1013);
    await second.close();
    // A slot freed is a slot usable again (bounded retry: the close is processed async).
    let fourth: RecordingSocket | null = null;
    for (let i = 0; i < 50 && !fourth; i++) {
      const attempt = new RecordingSocket(
        `${wsBase(relay.url)}/api/chat?chatId=c-full`,
        bearer(token),
      );
      await attempt.waitFor(
        (es) => es.some((e) => e.type === "ready") || attempt.closeCode !== null,
        10_000,
        "ready or close",
      );
      if (attempt.events.some((e) => e.type === "ready")) fourth = attempt;
      else await attempt.close();
    }
    assert(fourth, "a freed slot is reusable");
    await Promise.all([first.close(), fourth.close()]);
  });
});
