/**
 * Work distribution through a real relay (SPEC §3): leases that expire, renew and release,
 * hand-over to another worker without a second answer, per-chat order and limits, stop,
 * concurrent claimers, and the queue position waiting visitors see.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  chatHistory,
  type Json,
  openChatIds,
  postMessage,
  type RecordingSocket,
  request,
  sleep,
  visitorSocket,
  visitorToken,
  workerCall,
  workerRequest,
  workerSocket,
} from "./_clients.ts";
import { withRelay } from "./_relay_process.ts";

function claimHttp(base: string, workerId: string, chatId?: string) {
  return workerRequest(
    base,
    "/api/worker/turns/claim",
    chatId ? { workerId, chatId } : {
      workerId,
    },
  );
}

function renewHttp(base: string, turn: Json) {
  return workerRequest(base, `/api/worker/turns/${turn.id}/renew`, { leaseId: turn.leaseId });
}

function cancel(base: string, token: string, chatId: string) {
  return request(`${base}/api/chat/${chatId}/cancel`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
}

const activityFor = (worker: RecordingSocket, chatId: string) =>
  worker.events.filter((e) => e.type === "chat_activity" && e.chatId === chatId).length;

const statesOf = (socket: RecordingSocket) => socket.events.filter((e) => e.type === "workerState");

const terraMessages = (socket: RecordingSocket) =>
  socket.events.filter((e) => e.type === "message" && e.sender === "Terra");

async function closeAll(...sockets: RecordingSocket[]): Promise<void> {
  await Promise.all(sockets.map((s) => s.close()));
}

Deno.test("an unrenewed lease expires: another worker takes the turn, the stale worker is refused and its late reply is a duplicate", async () => {
  await withRelay({ TURN_LEASE_SECONDS: "1" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const visitor = await visitorSocket(relay.url, "handover", token);
    const workerB = await workerSocket(relay.url, "worker-b");
    try {
      const question = await postMessage(relay.url, token, "handover", "Who answers?");
      await workerB.waitFor(() => activityFor(workerB, "handover") === 1, 10_000, "activity");
      const claimA = await claimHttp(relay.url, "worker-a");
      const a = claimA.body.turn;
      assertEquals([a.messageId, a.attempt, a.cancelRequested], [question.body.id, 1, false]);
      assertEquals(await openChatIds(relay.url), [], "a leased turn is not offered");

      // worker-a never renews: once the lease runs out the turn is offered again.
      await workerB.waitFor(
        () => activityFor(workerB, "handover") >= 2,
        10_000,
        "chat_activity after the lease expired",
      );
      assertEquals(await openChatIds(relay.url), ["handover"]);
      await visitor.waitFor(
        () =>
          statesOf(visitor).some((e) =>
            e.state === "queued" && /stopped responding/.test(e.detail)
          ),
        10_000,
        "the visitor is told its question waits again",
      );

      const claimB = await workerCall(workerB, { type: "claim", workerId: "worker-b" });
      assert(claimB.ok, JSON.stringify(claimB));
      const b = claimB.result.turn;
      assertEquals([b.id, b.messageId, b.attempt], [a.id, question.body.id, 2]);
      assert(b.leaseId && b.leaseId !== a.leaseId, "the new lease is a different lease");
      assertEquals(await openChatIds(relay.url), []);

      const renewA = await renewHttp(relay.url, a);
      assertEquals([renewA.status, renewA.body.code], [409, "lease_lost"]);
      assertEquals(typeof renewA.body.error, "string");
      const chunkA = await workerRequest(relay.url, "/api/chat/handover/agent-chunk", {
        content: "stale words",
        turnId: a.id,
        leaseId: a.leaseId,
      });
      assertEquals([chunkA.status, chunkA.body.code], [409, "lease_lost"]);

      workerB.send({
        type: "chunk",
        chatId: "handover",
        content: "B answers",
        turnId: b.id,
        leaseId: b.leaseId,
      });
      const replyB = await workerCall(workerB, {
        type: "reply",
        chatId: "handover",
        content: "B answers",
        replyTo: b.id,
        leaseId: b.leaseId,
      });
      assert(replyB.ok, JSON.stringify(replyB));
      assertEquals(replyB.result.duplicate, false);

      const replyA = await workerRequest(relay.url, "/api/chat/handover/agent", {
        content: "A answers late",
        replyTo: a.id,
        leaseId: a.leaseId,
      });
      assertEquals(
        [replyA.status, replyA.body.duplicate, replyA.body.content, replyA.body.id],
        [200, true, "B answers", replyB.result.id],
      );

      const stored = await chatHistory(relay.url, token, "handover");
      assertEquals(stored.map((m) => [m.sender, m.content]), [
        ["Visitor", "Who answers?"],
        ["Terra", "B answers"],
      ]);
      assertEquals(stored[1].replyTo, question.body.id);
      await visitor.waitFor(() => terraMessages(visitor).length >= 1, 10_000, "the answer");
      await sleep(200); // a second reply event, if the relay sent one, would arrive by now
      assertEquals(terraMessages(visitor).map((m) => m.content), ["B answers"]);
      assert(
        !visitor.events.some((e) => e.type === "assistantChunk" && e.content === "stale words"),
        "the stale worker's chunk never reached the visitor",
      );
    } finally {
      await closeAll(visitor, workerB);
    }
  });
});

Deno.test("renewing a lease keeps the turn with its worker past the original expiry", async () => {
  await withRelay({ TURN_LEASE_SECONDS: "1" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const visitor = await visitorSocket(relay.url, "renewed", token);
    const other = await workerSocket(relay.url, "other");
    try {
      await postMessage(relay.url, token, "renewed", "Take your time");
      const turn = (await claimHttp(relay.url, "steady")).body.turn;
      const firstExpiry = Date.parse(turn.leaseExpiresAt);
      const activityAtClaim = activityFor(other, "renewed");

      // Renew well inside the 1 s lease until 1.5 s past the original expiry.
      let lastExpiry = firstExpiry;
      for (let i = 0; i < 40 && Date.now() < firstExpiry + 1_500; i++) {
        await sleep(200);
        const renew = await renewHttp(relay.url, turn);
        assertEquals(renew.status, 200, JSON.stringify(renew.body));
        assertEquals(renew.body.cancelRequested, false);
        const expiry = Date.parse(renew.body.leaseExpiresAt);
        assert(expiry >= lastExpiry, "each renewal pushes the expiry forward");
        lastExpiry = expiry;
        assertEquals(await openChatIds(relay.url), [], "a renewed turn is never offered again");
      }
      assert(Date.now() > firstExpiry + 1_000, "the loop outlived the original lease");
      assert(lastExpiry > firstExpiry + 1_000);

      assertEquals((await claimHttp(relay.url, "other")).body.turn, null);
      assertEquals(activityFor(other, "renewed"), activityAtClaim, "nobody was told to take it");
      assert(
        !statesOf(visitor).some((e) => e.state === "queued" && /stopped responding/.test(e.detail)),
        "the visitor never saw its question handed back",
      );
      const reply = await workerRequest(relay.url, "/api/chat/renewed/agent", {
        content: "Done",
        replyTo: turn.id,
        leaseId: turn.leaseId,
      });
      assertEquals([reply.status, reply.body.duplicate], [201, false]);
    } finally {
      await closeAll(visitor, other);
    }
  });
});

Deno.test("a released turn goes back to the queue and the next claim is a new attempt", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const visitor = await visitorSocket(relay.url, "released", token);
    const workerB = await workerSocket(relay.url, "worker-b");
    try {
      const question = await postMessage(relay.url, token, "released", "Anyone?");
      const a = (await claimHttp(relay.url, "worker-a")).body.turn;
      assertEquals(await openChatIds(relay.url), []);
      const before = activityFor(workerB, "released");
      const release = await workerRequest(relay.url, `/api/worker/turns/${a.id}/release`, {
        leaseId: a.leaseId,
      });
      assertEquals([release.status, release.body], [200, { ok: true }]);
      assertEquals(await openChatIds(relay.url), ["released"]);
      await workerB.waitFor(() => activityFor(workerB, "released") > before, 10_000, "activity");
      await visitor.waitFor(
        () => statesOf(visitor).at(-1)?.state === "queued",
        10_000,
        "queued again",
      );

      const b = (await workerCall(workerB, { type: "claim", workerId: "worker-b" })).result.turn;
      assertEquals([b.messageId, b.attempt], [question.body.id, 2]);
      assert(b.leaseId !== a.leaseId);
      const renewA = await renewHttp(relay.url, a);
      assertEquals([renewA.status, renewA.body.code], [409, "lease_lost"]);
      const releaseAgain = await workerRequest(relay.url, `/api/worker/turns/${a.id}/release`, {
        leaseId: a.leaseId,
      });
      assertEquals([releaseAgain.status, releaseAgain.body.code], [409, "lease_lost"]);
      assertEquals(await openChatIds(relay.url), [], "a stale release does not free B's turn");
      const renewB = await workerCall(workerB, {
        type: "renew",
        turnId: b.id,
        leaseId: b.leaseId,
      });
      assert(renewB.ok, JSON.stringify(renewB));
    } finally {
      await closeAll(visitor, workerB);
    }
  });
});

Deno.test("a chat's turns are served one at a time in order, and a chat cannot queue without limit", async () => {
  await withRelay({ MAX_PENDING_TURNS_PER_CHAT: "2" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const first = await postMessage(relay.url, token, "ordered", "one");
    const second = await postMessage(relay.url, token, "ordered", "two");
    assertEquals([first.status, second.status], [201, 201]);
    const third = await postMessage(relay.url, token, "ordered", "three");
    assertEquals([third.status, third.body.code], [429, "too_many_pending"]);
    assertEquals(typeof third.body.error, "string");
    assert(Number(third.headers.get("retry-after")) > 0, "429 says when to retry");
    assertEquals(
      (await chatHistory(relay.url, token, "ordered")).map((m) => m.content),
      ["one", "two"],
      "the refused message was not stored",
    );

    const t1 = (await claimHttp(relay.url, "w1")).body.turn;
    assertEquals(t1.messageId, first.body.id);
    // The second question waits for the first answer, whichever way a worker asks.
    assertEquals((await claimHttp(relay.url, "w2")).body.turn, null);
    assertEquals((await claimHttp(relay.url, "w2", "ordered")).body.turn, null);
    assertEquals(await openChatIds(relay.url), []);
    // ...but it does not hold up other chats.
    const elsewhere = await postMessage(relay.url, token, "elsewhere", "me too");
    const te = (await claimHttp(relay.url, "w2")).body.turn;
    assertEquals(te?.messageId, elsewhere.body.id);

    const reply = await workerRequest(relay.url, "/api/chat/ordered/agent", {
      content: "answer one",
      replyTo: t1.id,
      leaseId: t1.leaseId,
    });
    assertEquals(reply.status, 201);
    assertEquals(await openChatIds(relay.url), ["ordered"]);
    const t2 = (await claimHttp(relay.url, "w3")).body.turn;
    assertEquals(t2?.messageId, second.body.id);
    // With one question answered there is room for another.
    const again = await postMessage(relay.url, token, "ordered", "three");
    assertEquals(again.status, 201);
    assertEquals(
      (await chatHistory(relay.url, token, "ordered")).map((m) => m.content),
      ["one", "two", "answer one", "three"],
    );
  });
});

Deno.test("stopping a question that is still waiting removes it from the queue", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const visitor = await visitorSocket(relay.url, "waiting", token);
    try {
      const question = await postMessage(relay.url, token, "waiting", "never mind");
      assertEquals(await openChatIds(relay.url), ["waiting"]);
      const res = await cancel(relay.url, token, "waiting");
      assertEquals([res.status, res.body], [200, { cancelled: true }]);
      await visitor.waitFor(() => statesOf(visitor).at(-1)?.state === "idle", 10_000, "idle");
      const state = await request(`${relay.url}/api/chat/waiting/worker-state`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assertEquals(state.body.state, "idle");
      assertEquals(await openChatIds(relay.url), []);
      assertEquals((await claimHttp(relay.url, "w")).body.turn, null);
      assertEquals(await chatHistory(relay.url, token, "waiting"), [question.body]);
      assertEquals((await cancel(relay.url, token, "waiting")).body, { cancelled: false });
      // A late reply to the stopped question does not invent an answer.
      const late = await workerRequest(relay.url, "/api/chat/waiting/agent", {
        content: "too late",
        replyTo: question.body.id,
      });
      assertEquals([late.status, late.body.code], [409, "turn_closed"]);
      assertEquals(await chatHistory(relay.url, token, "waiting"), [question.body]);
    } finally {
      await visitor.close();
    }
  });
});

Deno.test("stopping an answer in progress reaches the worker, and its partial answer is kept as stopped", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const visitor = await visitorSocket(relay.url, "running", token);
    const worker = await workerSocket(relay.url, "w");
    try {
      const question = await postMessage(relay.url, token, "running", "go on");
      const turn = (await workerCall(worker, { type: "claim", workerId: "w" })).result.turn;
      worker.send({
        type: "chunk",
        chatId: "running",
        content: "Half an",
        turnId: turn.id,
        leaseId: turn.leaseId,
      });
      await visitor.waitFor((es) => es.some((e) => e.content === "Half an"), 10_000, "chunk");
      const res = await cancel(relay.url, token, "running");
      assertEquals([res.status, res.body], [200, { cancelled: true }]);
      await worker.waitFor(
        (es) => es.some((e) => e.type === "cancel" && e.turnId === turn.id),
        10_000,
        "cancel pushed to the worker",
      );
      const pushed = worker.events.find((e) => e.type === "cancel");
      assertEquals(pushed.chatId, "running");
      const renew = await workerCall(worker, {
        type: "renew",
        turnId: turn.id,
        leaseId: turn.leaseId,
      });
      assert(renew.ok, JSON.stringify(renew));
      assertEquals(renew.result.cancelRequested, true);
      const renewHttpRes = await renewHttp(relay.url, turn);
      assertEquals(renewHttpRes.body.cancelRequested, true);
      await visitor.waitFor(
        () => statesOf(visitor).some((e) => e.detail === "Stopping…"),
        10_000,
        "stopping state",
      );

      const reply = await workerCall(worker, {
        type: "reply",
        chatId: "running",
        content: "Half an",
        replyTo: turn.id,
        leaseId: turn.leaseId,
        stopped: true,
      });
      assert(reply.ok, JSON.stringify(reply));
      assertEquals(reply.result.duplicate, false);
      const stored = await chatHistory(relay.url, token, "running");
      assertEquals(stored.length, 2);
      assertEquals(
        [stored[1].sender, stored[1].content, stored[1].stopped, stored[1].replyTo],
        ["Terra", "Half an", true, question.body.id],
      );
      await visitor.waitFor(() => terraMessages(visitor).length === 1, 10_000, "stopped reply");
      assertEquals(terraMessages(visitor)[0].stopped, true);
      await visitor.waitFor(
        () => statesOf(visitor).at(-1)?.state === "responded",
        10_000,
        "responded",
      );
      assertEquals(await openChatIds(relay.url), []);
    } finally {
      await closeAll(visitor, worker);
    }
  });
});

Deno.test("a stopped answer whose worker then dies is stored as a stopped reply and never handed to another worker", async () => {
  await withRelay({ TURN_LEASE_SECONDS: "1" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const visitor = await visitorSocket(relay.url, "orphan", token);
    const other = await workerSocket(relay.url, "other");
    try {
      const question = await postMessage(relay.url, token, "orphan", "tell me everything");
      const turn = (await claimHttp(relay.url, "doomed")).body.turn;
      for (const content of ["Partial ", "words"]) {
        const res = await workerRequest(relay.url, "/api/chat/orphan/agent-chunk", {
          content,
          turnId: turn.id,
          leaseId: turn.leaseId,
        });
        assertEquals(res.status, 200);
      }
      const activityBefore = activityFor(other, "orphan");
      assertEquals((await cancel(relay.url, token, "orphan")).body, { cancelled: true });
      await other.waitFor((es) => es.some((e) => e.type === "cancel"), 10_000, "cancel push");

      // "doomed" never renews nor replies. Until the relay stores the stopped reply, no
      // worker may be offered the stopped question.
      const offered: string[][] = [];
      const deadline = Date.now() + 10_000;
      for (let i = 0; i < 400 && Date.now() < deadline; i++) {
        if (terraMessages(visitor).length > 0) break;
        const open = await openChatIds(relay.url);
        if (open.length) offered.push(open);
        await sleep(25);
      }
      await visitor.waitFor(() => terraMessages(visitor).length === 1, 10_000, "stopped reply");
      assertEquals(offered, [], "the stopped question was offered to workers again");
      assertEquals(activityFor(other, "orphan"), activityBefore);

      const reply = terraMessages(visitor)[0];
      assertEquals(
        [reply.content, reply.stopped, reply.replyTo],
        ["Partial words", true, question.body.id],
      );
      const stored = await chatHistory(relay.url, token, "orphan");
      assertEquals(stored.map((m) => [m.sender, m.content, m.stopped]), [
        ["Visitor", "tell me everything", undefined],
        ["Terra", "Partial words", true],
      ]);
      assertEquals((await claimHttp(relay.url, "other")).body.turn, null);
      const lateRenew = await renewHttp(relay.url, turn);
      assertEquals([lateRenew.status, lateRenew.body.code], [409, "lease_lost"]);
      const lateReply = await workerRequest(relay.url, "/api/chat/orphan/agent", {
        content: "Partial words and the rest",
        replyTo: turn.id,
        leaseId: turn.leaseId,
      });
      assertEquals([lateReply.status, lateReply.body.duplicate, lateReply.body.content], [
        200,
        true,
        "Partial words",
      ]);
      assertEquals((await chatHistory(relay.url, token, "orphan")).length, 2);
    } finally {
      await closeAll(visitor, other);
    }
  });
});

Deno.test("concurrent claimers never get the same turn twice", async () => {
  // Contention is what exposes a double hand-out, so every round races twelve claimers (ten
  // over HTTP, two over worker sockets) for six turns, and there are several rounds.
  const rounds = 25;
  const chatsPerRound = 6;
  await withRelay({ RATE_LIMIT_MAX_PER_IP: "1000" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const sockets = await Promise.all([
      workerSocket(relay.url, "sock-1"),
      workerSocket(relay.url, "sock-2"),
    ]);
    try {
      for (let round = 0; round < rounds; round++) {
        const questions: string[] = [];
        for (let i = 0; i < chatsPerRound; i++) {
          const posted = await postMessage(relay.url, token, `race-${round}-${i}`, "first come");
          assertEquals(posted.status, 201);
          questions.push(posted.body.id);
        }
        const results: (Json | null)[] = await Promise.all([
          ...Array.from(
            { length: 10 },
            async (_, i) => (await claimHttp(relay.url, `http-${i}`)).body.turn,
          ),
          ...sockets.map(async (s, i) => {
            const ack = await workerCall(s, { type: "claim", workerId: `sock-${i + 1}` });
            assert(ack.ok, JSON.stringify(ack));
            return ack.result.turn;
          }),
        ]);
        const turns = results.filter((t) => t !== null);
        assertEquals(
          turns.map((t) => t.messageId).sort(),
          [...questions].sort(),
          `round ${round}: every turn handed out exactly once: ${JSON.stringify(results)}`,
        );
        assert(turns.every((t) => t.attempt === 1), `round ${round}: a first attempt each`);
        // Every winner really holds its lease (a double hand-out would leave one stale).
        for (const t of turns) {
          const renew = await renewHttp(relay.url, t);
          assertEquals(renew.status, 200, `round ${round}: ${JSON.stringify(renew.body)}`);
          const reply = await workerRequest(relay.url, `/api/chat/${t.chatId}/agent`, {
            content: "mine",
            replyTo: t.id,
            leaseId: t.leaseId,
          });
          assertEquals([reply.status, reply.body.duplicate], [201, false]);
        }
        assertEquals(await openChatIds(relay.url), []);
      }
    } finally {
      await closeAll(...sockets);
    }
  });
});

Deno.test("waiting visitors see their place in line and move up as chats are claimed", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const chats = ["line-0", "line-1", "line-2"];
    const sockets = await Promise.all(chats.map((c) => visitorSocket(relay.url, c, token)));
    try {
      const queued = (i: number) =>
        statesOf(sockets[i]!).filter((e) => e.state === "queued" && e.queuePosition !== undefined);
      const last = (i: number) => queued(i).at(-1);
      for (const chatId of chats) {
        assertEquals((await postMessage(relay.url, token, chatId, "hi")).status, 201);
      }
      for (let i = 0; i < 3; i++) {
        await sockets[i]!.waitFor(() => last(i)?.queuePosition === i, 10_000, `position ${i}`);
      }
      assertEquals(chats.map((_, i) => last(i).detail), [
        "You're next in line",
        "1 chat ahead of you",
        "2 chats ahead of you",
      ]);
      const polled = await request(`${relay.url}/api/chat/line-2/worker-state`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assertEquals([polled.body.state, polled.body.queuePosition], ["queued", 2]);

      const first = (await claimHttp(relay.url, "w")).body.turn;
      assertEquals(first.chatId, "line-0", "the oldest waiting chat is served first");
      await sockets[0]!.waitFor(
        () => statesOf(sockets[0]!).at(-1)?.state === "processing",
        10_000,
        "processing",
      );
      await sockets[1]!.waitFor(() => last(1)?.queuePosition === 0, 10_000, "1 moved up");
      await sockets[2]!.waitFor(() => last(2)?.queuePosition === 1, 10_000, "2 moved up");
      assertEquals([last(1).detail, last(2).detail], [
        "You're next in line",
        "1 chat ahead of you",
      ]);

      const second = (await claimHttp(relay.url, "w")).body.turn;
      assertEquals(second.chatId, "line-1");
      await sockets[2]!.waitFor(() => last(2)?.queuePosition === 0, 10_000, "2 is next");
      // What the last visitor saw, in order: a steady countdown, no jumps back.
      assertEquals(queued(2).map((e) => e.queuePosition), [2, 1, 0]);
      assertEquals(queued(1).map((e) => e.queuePosition), [1, 0]);
    } finally {
      await closeAll(...sockets);
    }
  });
});
