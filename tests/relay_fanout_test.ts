/** Fan-out to visitor sockets: order, slow consumers, and a thousand sockets at once. */
import { assert, assertEquals } from "./_assert.ts";
import {
  applyChunks,
  postMessage,
  RecordingSocket,
  request,
  visitorSocket,
  visitorToken,
  workerCall,
  workerSocket,
} from "./_clients.ts";
import { TEST_SECRETS, withRelay } from "./_relay_process.ts";

Deno.test("two visitor sockets on one chat both receive every chunk in order", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const worker = await workerSocket(relay.url);
    const [a, b] = await Promise.all([
      visitorSocket(relay.url, "pair", token),
      visitorSocket(relay.url, "pair", token),
    ]);
    await postMessage(relay.url, token, "pair", "Count for me");
    const turn = (await workerCall(worker, { type: "claim", workerId: "w" })).result.turn;
    const words = Array.from({ length: 200 }, (_, i) => `w${i} `);
    for (const content of words) {
      worker.send({ type: "chunk", chatId: "pair", content, turnId: turn.id });
    }
    worker.send({ type: "chunk", chatId: "pair", content: "", done: true, turnId: turn.id });
    for (const socket of [a, b]) {
      await socket.waitFor((es) => es.some((e) => e.type === "assistantChunk" && e.done), 20_000);
      const chunks = socket.events.filter((e) =>
        e.type === "assistantChunk" && e.kind === "answer"
      );
      assertEquals(chunks.map((c) => c.content), [...words, ""]);
      assertEquals(applyChunks(socket.events), words.join(""));
    }
    const seqs = (s: RecordingSocket) =>
      s.events.filter((e) => e.type === "assistantChunk").map((e) => e.seq);
    assertEquals(seqs(a), seqs(b));
    const metrics = await request(`${relay.url}/metrics`, {
      headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
    });
    assert(metrics.body.includes("terrarium_chunks_total 201\n"), metrics.body);
    assert(metrics.body.includes("terrarium_deliveries_total 402\n"), "each chunk went to both");
    await Promise.all([a.close(), b.close(), worker.close()]);
  });
});

Deno.test("a visitor that stops reading is dropped while the others keep receiving", async () => {
  await withRelay({ MAX_SOCKET_BUFFER_BYTES: "256kb", BODY_SIZE_LIMIT: "1mb" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const worker = await workerSocket(relay.url);
    const reader = await visitorSocket(relay.url, "slow", token);
    // A raw client that completes the handshake and then never reads a byte.
    const stalled = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
    const key = btoa("terrarium-stall!");
    await stalled.write(new TextEncoder().encode(
      // A token socket: an original-page (accessCode) socket would get none of these
      // snapshots, which repeat text it already has.
      `GET /api/chat?chatId=slow HTTP/1.1\r\nAuthorization: Bearer ${token}\r\n` +
        `Host: 127.0.0.1:${relay.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ));
    try {
      await postMessage(relay.url, token, "slow", "Flood me");
      const turn = (await workerCall(worker, { type: "claim", workerId: "w" })).result.turn;
      const big = "x".repeat(60_000);
      const count = 200; // 12 MB: far beyond the stalled socket's kernel buffers and cap
      const bigChunks = () => reader.events.filter((e) => e.content?.length === big.length).length;
      for (let i = 1; i <= count; i++) {
        // Offset 0 replaces the text, so the answer stays small while the bytes pile up.
        worker.send({ type: "chunk", chatId: "slow", content: big, offset: 0, turnId: turn.id });
        // The live reader keeps pace, as a browser does; the stalled one never reads.
        if (i % 5 === 0) await reader.waitFor(() => bigChunks() >= i, 20_000, `chunk ${i}`);
      }
      worker.send({ type: "chunk", chatId: "slow", content: "", done: true, turnId: turn.id });
      await reader.waitFor(
        (es) => es.some((e) => e.type === "assistantChunk" && e.done),
        60_000,
        "all chunks",
      );
      const got = reader.events.filter((e) =>
        e.type === "assistantChunk" && e.content.length === big.length
      );
      assertEquals(got.length, count, "the reading visitor lost nothing");
      const metrics = await request(`${relay.url}/metrics`, {
        headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
      });
      const dropped = /terrarium_sockets_dropped_total (\d+)/.exec(metrics.body)?.[1];
      assert(Number(dropped) >= 1, `the stalled socket was dropped (metric: ${dropped})`);
    } finally {
      stalled.close();
      await Promise.all([reader.close(), worker.close()]);
    }
  });
});

Deno.test("1000 concurrent visitor sockets all receive a broadcast", async () => {
  const total = 1000;
  const chats = 10;
  await withRelay({ MAX_SOCKETS_PER_IP: "2000", MAX_SOCKETS_PER_CHAT: "200" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const worker = await workerSocket(relay.url);
    const sockets: RecordingSocket[] = [];
    try {
      // Open in batches so the test measures capacity, not the accept backlog.
      for (let i = 0; i < total; i += 100) {
        const batch = Array.from(
          { length: 100 },
          (_, j) => visitorSocket(relay.url, `many-${(i + j) % chats}`, token),
        );
        sockets.push(...await Promise.all(batch));
      }
      const turns = [];
      for (let c = 0; c < chats; c++) {
        await postMessage(relay.url, token, `many-${c}`, "Hello, everyone");
        turns.push(
          (await workerCall(worker, { type: "claim", workerId: "w", chatId: `many-${c}` })).result
            .turn,
        );
      }
      for (const turn of turns) {
        worker.send({ type: "chunk", chatId: turn.chatId, content: "broadcast", turnId: turn.id });
      }
      await Promise.all(
        sockets.map((s) =>
          s.waitFor(
            (es) => es.some((e) => e.type === "assistantChunk" && e.content === "broadcast"),
            60_000,
          )
        ),
      );
      const received = sockets.filter((s) =>
        s.events.some((e) => e.content === "broadcast")
      ).length;
      assertEquals(received, total);
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
      await worker.close();
    }
  });
});

Deno.test("a visitor socket that never answers pings is closed and forgotten", async () => {
  await withRelay({ WS_IDLE_TIMEOUT_SECONDS: "1" }, async (relay) => {
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
    try {
      await silent.write(new TextEncoder().encode(
        `GET /api/chat?chatId=idle&accessCode=${TEST_SECRETS.CHAT_PASSWORD} HTTP/1.1\r\n` +
          `Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${btoa("terrarium-idle!!")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ));
      // Read (and never answer) until the relay hangs up; bounded by count and time.
      const buffer = new Uint8Array(4096);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        silent.close();
      }, 15_000);
      let closed = false;
      try {
        for (let i = 0; i < 1000; i++) {
          if (await silent.read(buffer) === null) {
            closed = true;
            break;
          }
        }
      } catch { /* closed by the timer */ }
      clearTimeout(timer);
      assert(closed && !timedOut, "the relay closed the silent socket");
      const metrics = await request(`${relay.url}/metrics`, {
        headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
      });
      assert(metrics.body.includes("terrarium_visitor_sockets 0"), metrics.body);
    } finally {
      try {
        silent.close();
      } catch { /* already closed */ }
    }
  });
});
