/**
 * Two relays on one Redis (issue 14), all real processes: `redis-server`, two relays on it with
 * their derived permissions, real workers and the demo model. What a visitor sees when its socket
 * is on one relay and the worker on the other, when its relay is SIGKILLed mid-answer, when a
 * worker stalls and its lease goes to a worker on the other relay, in a reconnect storm over both
 * relays, and when Redis itself is SIGKILLed mid-answer: the whole answer, in `seq` order, once.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  applyChunks,
  chatHistory,
  type Json,
  postMessage,
  type RecordingSocket,
  request,
  sleep,
  visitorSocket,
  visitorToken,
} from "./_clients.ts";
import {
  eventSeqs,
  eventually,
  lastSeq,
  metricTotal,
  type Side,
  terraMessages,
  withRelayPair,
} from "./_relay_pair.ts";

/** The demo model's answer to `[long n]`. */
function longAnswer(n: number): string {
  return Array.from({ length: n }, (_, i) => `word${i + 1}`).join(" ");
}

/**
 * Why `events` (past `ready`) are not what a visitor should get, or "": out of `seq` order, or an
 * event sent twice. A resume's snapshot of the partial answer is one event per kind with the
 * partial's one `seq`, so equal numbers are fine for different kinds, never for the same one.
 */
function orderProblem(events: Json[]): string {
  const seen = new Set<string>();
  let previous = -1;
  for (const e of events.filter((e) => e.type !== "ready" && typeof e.seq === "number")) {
    const key = `${e.seq} ${e.type} ${e.kind ?? ""}`;
    if (e.seq < previous) return `seq ${e.seq} after ${previous}`;
    if (seen.has(key)) return `${key} twice`;
    seen.add(key);
    previous = e.seq;
  }
  return "";
}

/** Events in `seq` order, none twice. */
function assertInSeqOrder(events: Json[], what: string): void {
  assertEquals(orderProblem(events), "", `${what}: ${JSON.stringify(eventSeqs(events))}`);
}

async function closeAll(sockets: (RecordingSocket | null)[]): Promise<void> {
  await Promise.all(sockets.map((s) => s?.close()));
}

Deno.test("two relays: a visitor on relay A gets the answer of a worker on relay B, in seq order, stored once", async () => {
  await withRelayPair({}, {}, async (pair) => {
    const [a, b] = [pair.relay("a"), pair.relay("b")];
    await pair.worker("b");
    const token = await visitorToken(a.url);
    const visitor = await visitorSocket(a.url, "across", token);
    try {
      const question = await postMessage(a.url, token, "across", "[long 80]");
      assertEquals(question.status, 201, JSON.stringify(question.body));
      await visitor.waitFor((es) => terraMessages(es).length > 0, 30_000, "the reply on relay A");
      await sleep(300);

      const expected = longAnswer(80);
      const history = await chatHistory(b.url, token, "across");
      assertEquals(history.map((m) => [m.sender, m.content]), [
        ["Visitor", "[long 80]"],
        ["Terra", expected],
      ]);
      assertEquals(history[1].replyTo, question.body.id);
      assertEquals(await chatHistory(a.url, token, "across"), history, "one store for both");

      // What the visitor on A saw: the question, streamed chunks, the reply once, in order.
      assertInSeqOrder(visitor.events, "visitor on A");
      const chunks = visitor.events.filter((e) =>
        e.type === "assistantChunk" && e.kind === "answer"
      );
      assert(chunks.length > 5, `streamed in several chunks, got ${chunks.length}`);
      assertEquals(applyChunks(visitor.events), expected);
      assertEquals(terraMessages(visitor.events).map((m) => m.id), [history[1].id]);
      assertEquals(
        visitor.events.filter((e) => e.type === "message" && e.sender === "Visitor").length,
        1,
      );
      // The worker is on B alone, and A delivered the chunks to its visitor.
      assertEquals(await metricTotal(b, "terrarium_worker_sockets"), 1, "the worker is on B");
      assertEquals(await metricTotal(a, "terrarium_worker_sockets"), 0, "no worker on A");
      assert(await metricTotal(a, "terrarium_deliveries_total") > 0, "A delivered the chunks");
    } finally {
      await visitor.close();
    }
  });
});

Deno.test("two relays: relay A SIGKILLed mid-answer, the visitor resumes on relay B and has the whole answer exactly once", async () => {
  await withRelayPair({}, { chunkDelayMs: 10 }, async (pair) => {
    const b = pair.relay("b");
    await pair.worker("b");
    const token = await visitorToken(pair.relay("a").url);
    const visitor = await visitorSocket(pair.relay("a").url, "failover", token);
    let resumed: RecordingSocket | null = null;
    try {
      const question = await postMessage(pair.relay("a").url, token, "failover", "[long 400]");
      assertEquals(question.status, 201, JSON.stringify(question.body));
      await visitor.waitFor((es) => applyChunks(es).length > 100, 30_000, "part of the answer");
      assertEquals(terraMessages(visitor.events), [], "A dies while the answer streams");

      await pair.relay("a").kill();
      assert((await visitor.waitClosed()) !== null, "the visitor noticed relay A went away");
      const before = [...visitor.events];
      const seen = applyChunks(before);
      resumed = await visitorSocket(b.url, "failover", token, lastSeq(before));
      await resumed.waitFor((es) => terraMessages(es).length > 0, 30_000, "the reply on relay B");
      await sleep(300);

      const expected = longAnswer(400);
      assert(seen.length < expected.length, "A died before the answer was complete");
      assertEquals(applyChunks(resumed.events, "answer", seen), expected, "the whole answer");
      assertEquals(terraMessages([...before, ...resumed.events]).length, 1, "the reply once");
      // Nothing the visitor had is sent again; what follows is in order.
      for (const seq of eventSeqs(resumed.events)) {
        assert(seq > lastSeq(before), `seq ${seq} was already seen (up to ${lastSeq(before)})`);
      }
      assertInSeqOrder(resumed.events, "resumed on B");
      const history = await chatHistory(b.url, token, "failover");
      assertEquals(history.map((m) => [m.sender, m.content]), [
        ["Visitor", "[long 400]"],
        ["Terra", expected],
      ]);
      assertEquals(history[0], question.body, "the acknowledged question, byte for byte");
    } finally {
      await closeAll([visitor, resumed]);
    }
  });
});

Deno.test("two relays: a worker on B stalls mid-answer, its lease expires and a worker on A answers the turn once", async () => {
  await withRelayPair({ TURN_LEASE_SECONDS: "3" }, { chunkDelayMs: 10 }, async (pair) => {
    const [a, b] = [pair.relay("a"), pair.relay("b")];
    const stalled = await pair.worker("b");
    const token = await visitorToken(a.url);
    const visitor = await visitorSocket(a.url, "handover", token);
    let stopped = false;
    try {
      const question = await postMessage(a.url, token, "handover", "[long 500]");
      assertEquals(question.status, 201, JSON.stringify(question.body));
      await visitor.waitFor((es) => applyChunks(es).length > 50, 30_000, "B's worker streaming");
      // A stall, not a crash: the process keeps its sockets and wakes up later with old leases.
      Deno.kill(stalled.pid, "SIGSTOP");
      stopped = true;
      const stalledText = applyChunks(visitor.events);
      await pair.worker("a");

      await visitor.waitFor((es) => terraMessages(es).length > 0, 45_000, "A's worker's reply");
      Deno.kill(stalled.pid, "SIGCONT");
      stopped = false;
      // The woken worker still holds its lost lease: give it time to try its chunks and reply.
      await sleep(2_000);

      const expected = longAnswer(500);
      assert(stalledText.length < expected.length, "B's worker stalled before the end");
      const history = await chatHistory(b.url, token, "handover");
      assertEquals(history.map((m) => [m.sender, m.content]), [
        ["Visitor", "[long 500]"],
        ["Terra", expected],
      ]);
      assertEquals(history[1].replyTo, question.body.id);
      assertEquals(terraMessages(visitor.events).length, 1, "the reply once");
      assertEquals(applyChunks(visitor.events), expected, "the visitor's text is the reply");
      assertInSeqOrder(visitor.events, "visitor on A");
      const transitions = async (transition: string) =>
        await metricTotal(a, "terrarium_turns_total", `transition="${transition}"`) +
        await metricTotal(b, "terrarium_turns_total", `transition="${transition}"`);
      assertEquals(await transitions("claimed"), 2, "claimed by B's worker, then by A's");
      assert(await transitions("expired") >= 1, "the stalled worker's lease expired");
      assert(
        stalled.lines.some((l) => /lease/i.test(l)),
        `the woken worker was told its lease is gone:\n${stalled.lines.slice(-20).join("\n")}`,
      );
    } finally {
      if (stopped) Deno.kill(stalled.pid, "SIGCONT");
      await visitor.close();
    }
  });
});

Deno.test("two relays: a reconnect storm of 200 visitors over both relays while the answer streams loses and repeats nothing", async () => {
  const SOCKETS = 200;
  const RECONNECTS = 2;
  await withRelayPair({}, { chunkDelayMs: 10 }, async (pair) => {
    const side = (i: number): Side => (i % 2 === 0 ? "a" : "b");
    const other = (s: Side): Side => (s === "a" ? "b" : "a");
    await pair.worker("b");
    const token = await visitorToken(pair.relay("a").url);
    // One chain per visitor: its sockets one after another, and every event they were sent.
    const chains: { side: Side; socket: RecordingSocket; events: Json[]; sockets: number }[] = [];
    try {
      for (let i = 0; i < SOCKETS; i += 25) {
        const opened = await Promise.all(
          Array.from(
            { length: Math.min(25, SOCKETS - i) },
            (_, j) => visitorSocket(pair.relay(side(i + j)).url, "storm", token),
          ),
        );
        opened.forEach((socket, j) =>
          chains.push({ side: side(i + j), socket, events: [], sockets: 1 })
        );
      }
      const question = await postMessage(pair.relay("a").url, token, "storm", "[long 500]");
      assertEquals(question.status, 201, JSON.stringify(question.body));
      await chains[0]!.socket.waitFor((es) => applyChunks(es).length > 20, 30_000, "streaming");

      // Every visitor drops its socket and comes back on the other relay with its last seq,
      // twice, at moments spread over the first seconds of the answer.
      const started = Date.now();
      await Promise.all(chains.map(async (chain, i) => {
        for (let r = 0; r < RECONNECTS; r++) {
          await sleep(((i * 37 + r * 500) % 1_500) + 50);
          await chain.socket.close();
          chain.events.push(...chain.socket.events.filter((e) => e.type !== "ready"));
          chain.side = other(chain.side);
          chain.socket = await visitorSocket(
            pair.relay(chain.side).url,
            "storm",
            token,
            lastSeq(chain.events),
          );
          chain.sockets++;
        }
      }));
      const stormMs = Date.now() - started;

      const expected = longAnswer(500);
      await eventually(
        () => chains.every((c) => terraMessages(c.socket.events).length > 0),
        "every visitor has the reply",
        40_000,
      );
      await sleep(300);
      const history = await chatHistory(pair.relay("b").url, token, "storm");
      assertEquals(history.map((m) => [m.sender, m.content]), [
        ["Visitor", "[long 500]"],
        ["Terra", expected],
      ]);
      const wrong: string[] = [];
      for (const [i, chain] of chains.entries()) {
        const events = [...chain.events, ...chain.socket.events.filter((e) => e.type !== "ready")];
        const order = orderProblem(events);
        const text = applyChunks(events);
        const replies = terraMessages(events).length;
        if (order || text !== expected || replies !== 1) {
          wrong.push(
            `visitor ${i} (${chain.sockets} sockets): ${order || "in order"}, replies=${replies} ` +
              `text=${text.length}/${expected.length} chars`,
          );
        }
      }
      assertEquals(wrong, [], `after a storm of ${stormMs} ms`);
      assert(chains.every((c) => c.sockets === RECONNECTS + 1));
    } finally {
      await closeAll(chains.map((c) => c.socket));
    }
  });
});

Deno.test("two relays: Redis SIGKILLed and restarted mid-answer loses no acknowledged message, and the answer completes or ends in an error state", async () => {
  await withRelayPair(
    { TURN_LEASE_SECONDS: "5" },
    // 400 words at 25 ms: the answer streams for 10 s, longer than the outage lasts (1 s, then
    // each relay's reconnect, at most 5 s apart), so its stream must go on after it.
    { durability: "always", chunkDelayMs: 25 },
    async (pair) => {
      const [a, b] = [pair.relay("a"), pair.relay("b")];
      await pair.worker("b");
      const token = await visitorToken(a.url);
      const visitor = await visitorSocket(a.url, "outage", token);
      const acknowledged: Json[] = [];
      try {
        const question = await postMessage(a.url, token, "outage", "[long 400]");
        assertEquals(question.status, 201, JSON.stringify(question.body));
        acknowledged.push(question.body);
        await visitor.waitFor((es) => applyChunks(es).length > 50, 30_000, "streaming");

        await pair.redis.kill();
        // A question during the outage is refused (503) or, had it raced the kill, kept.
        const during = await postMessage(b.url, token, "outage-other", "While Redis is away");
        if (during.status === 201) acknowledged.push(during.body);
        else assertEquals([during.status, during.body.code], [503, "store_unavailable"]);
        await sleep(1_000);
        await pair.redis.start();

        // Both relays take writes again without a restart; a new question is answered.
        let after: Json = null;
        await eventually(async () => {
          const res = await postMessage(
            b.url,
            token,
            "outage",
            "[answer]After the outage[/answer]",
          );
          if (res.status === 201) after = res.body;
          return res.status === 201;
        }, "relay B takes questions again");
        acknowledged.push(after);
        await eventually(
          async () => {
            // Relay A may still be reconnecting to Redis (503) when B already takes writes.
            const history = await chatHistory(a.url, token, "outage").catch(() => []);
            return history.some((m: Json) => m.sender === "Terra" && m.replyTo === after.id);
          },
          "the question after the outage is answered",
          45_000,
        );
        // The visitor's socket on relay A, which lost its subscription with Redis, gets the
        // chat's events again: the reply after the outage, and before it all it missed.
        await visitor.waitFor(
          (es) => terraMessages(es).some((m) => m.replyTo === after.id),
          20_000,
          "the reply after the outage on the visitor's socket",
        );

        // No acknowledged message is lost, byte for byte.
        for (const message of acknowledged) {
          const history = await chatHistory(a.url, token, message.chatId);
          assertEquals(history.find((m) => m.id === message.id), message, "kept");
        }
        // The interrupted answer: the whole answer once, or no answer and an error state the
        // visitor was shown (never a half answer stored as Terra's words).
        const history = await chatHistory(a.url, token, "outage");
        const replies = history.filter((m) =>
          m.sender === "Terra" && m.replyTo === question.body.id
        );
        if (replies.length === 1) {
          assertEquals(replies[0].content, longAnswer(400), "the interrupted answer, complete");
          // What the visitor saw of it: the reply with the whole answer on its socket, and the
          // whole answer streamed before it — the chunks the relay refused during the outage
          // come again once it is back (the worker resends the text on chunk_gap).
          assertEquals(
            terraMessages(visitor.events).find((m) => m.replyTo === question.body.id)?.content,
            longAnswer(400),
          );
          const replyAt = visitor.events.findIndex((e) =>
            e.type === "message" && e.replyTo === question.body.id
          );
          const streamed = applyChunks(
            visitor.events.slice(0, replyAt).filter((e) =>
              e.type !== "assistantChunk" || e.turnId === question.body.id
            ),
          );
          assertEquals(streamed, longAnswer(400), "the stream went on after the outage");
        } else {
          assertEquals(replies, [], "at most one reply");
          assert(
            visitor.events.some((e) => e.type === "workerState" && e.state === "error"),
            `an error state for the interrupted answer: ${
              JSON.stringify(visitor.events.slice(-5))
            }`,
          );
        }
        // The visitor on A kept its socket through the outage and saw everything in order.
        assertEquals(visitor.closeCode, null, "the relay kept the visitor's socket");
        await visitor.waitFor(
          (es) => terraMessages(es).some((m) => m.replyTo === after.id),
          10_000,
          "the later reply on the socket",
        );
        assertInSeqOrder(visitor.events, "visitor on A");
        const state = await request(`${a.url}/api/chat/outage/worker-state`, {
          headers: { authorization: `Bearer ${token}` },
        });
        assertEquals(state.body.state, "responded");
      } finally {
        await visitor.close();
      }
    },
  );
});
