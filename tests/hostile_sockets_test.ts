/**
 * Hostile clients on the visitor socket (issue 11), against a real relay process: no socket
 * without credentials in the handshake (so nobody unauthenticated gets a 64 MiB message
 * buffer), junk floods and big frames closed, slots per client key counted from the
 * handshake, slow readers cut off at the buffer cap. Each test asserts what a user sees:
 * the honest visitor keeps its stream, the attacker gets nothing. Memory figures under the
 * same attacks are in `deno task bench --only=hostile`, not here.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  applyChunks,
  assertError,
  bearer,
  postMessage,
  RecordingSocket,
  request,
  tokenProtocols,
  upgradeRequest,
  visitorSocket,
  visitorToken,
  workerCall,
  workerSocket,
} from "./_clients.ts";
import {
  afterHandshake,
  clientFrame,
  parseServerFrames,
  rawHandshake,
  readUntil,
} from "./_raw_websocket.ts";
import { TEST_SECRETS, withRelay } from "./_relay_process.ts";

const decoder = new TextDecoder();
const headOf = (bytes: Uint8Array) => decoder.decode(bytes.subarray(0, 200)).split("\r\n")[0];
const endOfHead = (bytes: Uint8Array) => decoder.decode(bytes).includes("\r\n\r\n");

/** Closes raw connections, ignoring the ones the relay already closed. */
function closeAll(conns: Deno.TcpConn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** The relay's count of sockets it closed for `reason` (`terrarium_ws_rejected_total`). */
async function rejected(base: string, reason: string): Promise<number> {
  const res = await request(`${base}/metrics`, {
    headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
  });
  const line = res.body.split("\n").find((l: string) =>
    l.startsWith(`terrarium_ws_rejected_total{reason="${reason}"} `)
  );
  return line ? Number(line.split(" ")[1]) : 0;
}

/**
 * Reads a raw socket to its end (bounded). The relay closes a socket that keeps sending
 * after its close frame by resetting the connection, which discards what the client had
 * not read yet, the close frame included; so the end is the evidence, not the close code.
 */
async function readToEnd(conn: Deno.TcpConn): Promise<{ ended: boolean; texts: string[] }> {
  let ended = false;
  const bytes = await readUntil(conn, () => false, 5_000).finally(() => ended = true);
  // A read that returns null (EOF or reset) ends the loop before its idle timer: probe once.
  const probe = await Promise.race([
    conn.read(new Uint8Array(1)).then((n) => n === null, () => true),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), 2_000)),
  ]);
  return { ended: ended && probe, texts: parseServerFrames(afterHandshake(bytes)).texts };
}

/** Writes until the relay stops taking bytes or `rounds` writes went out; never reads. */
async function flood(conn: Deno.TcpConn, data: Uint8Array, rounds: number): Promise<number> {
  let sent = 0;
  for (let i = 0; i < rounds; i++) {
    if (!(await conn.write(data).then(() => true, () => false))) break;
    sent += data.length;
  }
  return sent;
}

/** A visitor and a worker streaming `count` chunks into `chatId`; returns what the visitor saw. */
async function honestStream(base: string, chatId: string, count: number) {
  const token = await visitorToken(base);
  const worker = await workerSocket(base, `w-${chatId}`);
  const visitor = await visitorSocket(base, chatId, token);
  try {
    await postMessage(base, token, chatId, "Are you still there?");
    const claim = await workerCall(worker, { type: "claim", workerId: "w", chatId });
    const words = Array.from({ length: count }, (_, i) => `w${i} `);
    for (const content of words) {
      worker.send({ type: "chunk", chatId, content, turnId: claim.result.turn.id });
    }
    await visitor.waitFor(
      (es) => applyChunks(es) === words.join(""),
      30_000,
      "every streamed chunk",
    );
    assertEquals(visitor.closeCode, null);
    return applyChunks(visitor.events);
  } finally {
    await Promise.all([visitor.close(), worker.close()]);
  }
}

Deno.test("a handshake without valid credentials gets 401 JSON and no socket", async () => {
  await withRelay({}, async (relay) => {
    const url = `${relay.url}/api/chat?chatId=c-hostile`;
    const refusals: [Record<string, string>, string, string][] = [
      [{}, "", "missing_credentials"],
      [bearer("not.a-token"), "", "bad_token"],
      [{ authorization: "Basic Zm9vOmJhcg==" }, "", "missing_credentials"],
      [{ "sec-websocket-protocol": "terrarium.v1, terrarium.token.forged.mac" }, "", "bad_token"],
      [{ "sec-websocket-protocol": "terrarium.v1" }, "", "missing_credentials"],
      [{}, "&accessCode=wrong-code-here", "bad_access_code"],
    ];
    for (const [headers, query, code] of refusals) {
      const what = `${JSON.stringify(headers)} ${query}`;
      assertError(await upgradeRequest(url + query, headers), 401, code, what);
      // On the wire: the answer is a plain 401, never a 101.
      const conn = await rawHandshake(relay.port, `/api/chat?chatId=c-hostile${query}`, headers);
      try {
        const bytes = await readUntil(conn, endOfHead);
        assertEquals(headOf(bytes), "HTTP/1.1 401 Unauthorized", what);
      } finally {
        closeAll([conn]);
      }
    }
    // The right credentials in each form do get a socket.
    const token = await visitorToken(relay.url);
    const ws = relay.url.replace("http", "ws") + "/api/chat?chatId=c-hostile";
    for (
      const socket of [
        new RecordingSocket(ws, bearer(token)),
        new RecordingSocket(ws, undefined, tokenProtocols(token)),
      ]
    ) {
      await socket.waitFor((es) => es.some((e) => e.type === "ready"), 10_000, "ready");
      await socket.close();
    }
    // A legacy socket gets the original frames only (no `ready`): it opens and stays open.
    const legacy = new RecordingSocket(`${ws}&accessCode=${TEST_SECRETS.CHAT_PASSWORD}`);
    await legacy.opened;
    await postMessage(relay.url, token, "c-hostile", "Still there?");
    await legacy.waitFor((es) => es.some((e) => e.content === "Still there?"), 10_000, "message");
    await legacy.close();
  });
});

Deno.test("8 unauthenticated sockets starting 60 MiB frames get a 401 and nothing else", async () => {
  await withRelay({}, async (relay) => {
    const conns: Deno.TcpConn[] = [];
    try {
      // The 401 is the answer to the handshake alone: the frame bytes after it are never
      // read as a WebSocket message, so no 60 MiB buffer is assembled for anyone.
      const start = clientFrame(new Uint8Array(256 * 1024), 0x2, 60 * 1024 * 1024);
      for (let i = 0; i < 8; i++) {
        const conn = await rawHandshake(relay.port, "/api/chat?chatId=c-big-frames");
        conns.push(conn);
        await flood(conn, start, 4);
      }
      for (const conn of conns) {
        const bytes = await readUntil(conn, endOfHead);
        assertEquals(headOf(bytes), "HTTP/1.1 401 Unauthorized");
        assert(!decoder.decode(bytes).includes("HTTP/1.1 101"), "no upgrade, ever");
      }
    } finally {
      closeAll(conns);
    }
    // The relay stays up and keeps serving an honest stream.
    const words = await honestStream(relay.url, "c-after-big", 50);
    assertEquals(words.split(" ").length, 51);
  });
});

Deno.test("20 authenticated sockets flooding junk without reading are closed; an honest visitor keeps its stream", async () => {
  await withRelay({ TRUST_PROXY: "true" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const conns: Deno.TcpConn[] = [];
    const junk = new Uint8Array(
      Array.from({ length: 500 }, () => [...clientFrame("x")]).flat(),
    );
    try {
      for (let i = 0; i < 20; i++) {
        // One chat each: MAX_SOCKETS_PER_CHAT is not what this is about.
        const conn = await rawHandshake(relay.port, `/api/chat?chatId=c-junk-${i}`, {
          ...bearer(token),
          "x-real-ip": "203.0.113.66",
        });
        conns.push(conn);
      }
      // Floods of 1-byte junk frames, never read (bounded at 400 writes, 200k frames, each),
      // while a visitor on another address and chat gets every chunk of a streamed answer.
      const [, words] = await Promise.all([
        Promise.all(conns.map((conn) => flood(conn, junk, 400))),
        honestStream(relay.url, "c-honest", 200),
      ]);
      assertEquals(words.split(" ").length, 201);
      // Each flooder was closed for its junk, got at most four answers, and lost its
      // connection; read only now.
      assertEquals(await rejected(relay.url, "bad_frames"), 20);
      for (const conn of conns) {
        const { ended, texts } = await readToEnd(conn);
        assert(ended, "the relay ended the connection");
        assert(texts.length <= 5, `${texts.length} answers to one flooder`);
        for (const text of texts) assert(/"type":"(ready|error)"/.test(text), text);
      }
    } finally {
      closeAll(conns);
    }
  });
});

Deno.test("frames above MAX_WS_FRAME_BYTES close with 1009; fast pings close with 1008; a ping still gets its pong", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const big = await visitorSocket(relay.url, "c-frames", token);
    big.socket.send("x".repeat(64 * 1024 + 1));
    assertEquals(await big.waitClosed(), 1009);

    const pinger = await visitorSocket(relay.url, "c-frames", token);
    pinger.send({ type: "ping" });
    await pinger.waitFor((es) => es.some((e) => e.type === "pong"), 10_000, "pong");
    assertEquals(pinger.closeCode, null);
    await pinger.close();

    // A page pings every 20 s; a hundred at once is a flood and costs the socket.
    const flooder = await rawHandshake(relay.port, "/api/chat?chatId=c-frames", bearer(token));
    try {
      const pings = Array.from({ length: 100 }, () => [...clientFrame('{"type":"ping"}')]);
      await flood(flooder, new Uint8Array(pings.flat()), 1);
      const { ended, texts } = await readToEnd(flooder);
      assert(ended, "the relay ended the connection");
      const pongs = texts.filter((t) => t === '{"type":"pong"}').length;
      assert(pongs >= 1 && pongs <= 21, `${pongs} pongs for 100 pings`);
      assertEquals(await rejected(relay.url, "frame_rate"), 1);
    } finally {
      closeAll([flooder]);
    }
  });
});

Deno.test("sockets per client key are counted from the handshake, for IPv4 and an IPv6 /64", async () => {
  await withRelay({ TRUST_PROXY: "true", MAX_SOCKETS_PER_IP: "3" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const conns: Deno.TcpConn[] = [];
    const handshake = async (ip: string, headers: Record<string, string> = bearer(token)) => {
      const conn = await rawHandshake(relay.port, "/api/chat?chatId=c-slots", {
        ...headers,
        "x-real-ip": ip,
      });
      conns.push(conn);
      return headOf(await readUntil(conn, endOfHead));
    };
    const SWITCHING = "HTTP/1.1 101 Switching Protocols";
    const FULL = "HTTP/1.1 429 Too Many Requests";
    try {
      // Refused handshakes hold no slot.
      for (let i = 0; i < 10; i++) {
        assertEquals(await handshake("198.51.100.7", {}), "HTTP/1.1 401 Unauthorized");
      }
      // Three sockets that never read or send hold the key's three slots.
      for (let i = 0; i < 3; i++) assertEquals(await handshake("198.51.100.7"), SWITCHING);
      assertEquals(await handshake("198.51.100.7"), FULL);
      assertError(
        await upgradeRequest(`${relay.url}/api/chat?chatId=c-slots`, {
          ...bearer(token),
          "x-real-ip": "198.51.100.7",
        }),
        429,
        "too_many_sockets",
      );
      assertEquals(await handshake("198.51.100.8"), SWITCHING, "another IPv4 address");

      // IPv6: one /64 is one key, however its addresses rotate.
      for (const host of ["1", "2", "3"]) {
        assertEquals(await handshake(`2001:db8:1:2::${host}`), SWITCHING);
      }
      assertEquals(await handshake("2001:db8:1:2:ffff:ffff:ffff:9"), FULL);
      assertEquals(await handshake("2001:db8:1:3::1"), SWITCHING, "the next /64");

      // A slot freed (the socket closed) is usable again; bounded retry, the close is async.
      closeAll(conns.splice(10, 1));
      let reopened = false;
      for (let i = 0; i < 50 && !reopened; i++) {
        reopened = (await handshake("198.51.100.7")) === SWITCHING;
        if (!reopened) await new Promise((r) => setTimeout(r, 100));
      }
      assert(reopened, "a freed slot is reusable");
    } finally {
      closeAll(conns);
    }
  });
});

Deno.test("a visitor that stops reading is closed with 1013 at the buffer cap", async () => {
  await withRelay({ MAX_SOCKET_BUFFER_BYTES: "256kb", BODY_SIZE_LIMIT: "1mb" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const worker = await workerSocket(relay.url);
    const stuck = await rawHandshake(relay.port, "/api/chat?chatId=c-slow", bearer(token));
    const reader = await visitorSocket(relay.url, "c-slow", token);
    try {
      await postMessage(relay.url, token, "c-slow", "Tell me everything");
      const turn = (await workerCall(worker, { type: "claim", workerId: "w" })).result.turn;
      const big = (i: number) => `${i}:`.padEnd(60_000, "x");
      for (let i = 0; i < 200; i++) {
        worker.send({
          type: "chunk",
          chatId: "c-slow",
          content: big(i),
          offset: 0,
          turnId: turn.id,
        });
        if (i % 2 === 1) {
          await reader.waitFor(
            (es) => es.some((e) => e.content?.startsWith(`${i}:`)),
            20_000,
            `chunk ${i}`,
          );
        }
      }
      assertEquals(reader.closeCode, null, "the reading visitor keeps its socket");
      const bytes = await readUntil(
        stuck,
        (b) => parseServerFrames(afterHandshake(b)).closeCode !== null,
      );
      assertEquals(parseServerFrames(afterHandshake(bytes)).closeCode, 1013);
    } finally {
      closeAll([stuck]);
      await Promise.all([reader.close(), worker.close()]);
    }
  });
});
