/** The work queue through a real relay: leases, hand-over, duplicates, cancel, positions. */
import { assert, assertEquals } from "./_assert.ts";
import {
  type Json,
  postMessage,
  request,
  visitorSocket,
  visitorToken,
  workerCall,
  workerRequest,
  workerSocket,
} from "./_clients.ts";
import { withRelay } from "./_relay_process.ts";

async function messages(base: string, token: string, chatId: string): Promise<Json[]> {
  return (await request(`${base}/api/chat/${chatId}/messages`, {
    headers: { authorization: `Bearer ${token}` },
  })).body;
}

Deno.test("an expired lease hands the turn to a second worker; the first worker's late reply is a duplicate", async () => {
  await withRelay({ TURN_LEASE_SECONDS: "1" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const workerB = await workerSocket(relay.url, "worker-b");
    await postMessage(relay.url, token, "handover", "Who answers?");
    const a =
      (await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "worker-a" })).body
        .turn;
    assertEquals(a.attempt, 1);
    const activity = () => workerB.events.filter((e) => e.type === "chat_activity").length;
    const before = activity();

    // worker-a never renews: after the lease the turn is offered again.
    await workerB.waitFor(() => activity() > before, 10_000, "chat_activity after expiry");
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds, ["handover"]);
    const b = (await workerCall(workerB, { type: "claim", workerId: "worker-b" })).result.turn;
    assertEquals([b.id, b.attempt], [a.id, 2]);
    assert(b.leaseId !== a.leaseId);

    const renewA = await workerRequest(relay.url, `/api/worker/turns/${a.id}/renew`, {
      leaseId: a.leaseId,
    });
    assertEquals([renewA.status, renewA.body.code], [409, "lease_lost"]);
    const chunkA = await workerRequest(relay.url, "/api/chat/handover/agent-chunk", {
      content: "stale",
      turnId: a.id,
      leaseId: a.leaseId,
    });
    assertEquals(chunkA.body.code, "lease_lost");

    const replyB = await workerCall(workerB, {
      type: "reply",
      chatId: "handover",
      content: "B answers",
      replyTo: b.id,
      leaseId: b.leaseId,
    });
    assertEquals(replyB.result.duplicate, false);
    const replyA = await workerRequest(relay.url, "/api/chat/handover/agent", {
      content: "A answers late",
      replyTo: a.id,
      leaseId: a.leaseId,
    });
    assertEquals([replyA.status, replyA.body.duplicate, replyA.body.content], [
      200,
      true,
      "B answers",
    ]);
    const terra = (await messages(relay.url, token, "handover")).filter((m) =>
      m.sender === "Terra"
    );
    assertEquals(terra.map((m) => m.content), ["B answers"]);
    await workerB.close();
  });
});

Deno.test("a chat's turns are served in order, and a chat cannot queue without limit", async () => {
  await withRelay({ MAX_PENDING_TURNS_PER_CHAT: "2" }, async (relay) => {
    const token = await visitorToken(relay.url);
    const first = await postMessage(relay.url, token, "ordered", "one");
    await postMessage(relay.url, token, "ordered", "two");
    const third = await postMessage(relay.url, token, "ordered", "three");
    assertEquals([third.status, third.body.code], [429, "too_many_pending"]);
    const t1 =
      (await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "w1" })).body.turn;
    assertEquals(t1.messageId, first.body.id);
    const none = await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "w2" });
    assertEquals(none.body.turn, null, "the second turn waits for the first");
    await workerRequest(relay.url, "/api/chat/ordered/agent", { content: "1", replyTo: t1.id });
    const t2 =
      (await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "w2" })).body.turn;
    assert(t2 && t2.id !== t1.id);
    const release = await workerRequest(relay.url, `/api/worker/turns/${t2.id}/release`, {
      leaseId: t2.leaseId,
    });
    assertEquals(release.status, 200);
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds, ["ordered"]);
  });
});

Deno.test("stop: a waiting turn is dropped; a running one is pushed to the worker and kept as stopped", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const cancel = (chatId: string) =>
      request(`${relay.url}/api/chat/${chatId}/cancel`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
    await postMessage(relay.url, token, "waiting", "never mind");
    assertEquals((await cancel("waiting")).body, { cancelled: true });
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds, []);

    const worker = await workerSocket(relay.url);
    await postMessage(relay.url, token, "running", "go on");
    const turn = (await workerCall(worker, { type: "claim", workerId: "w" })).result.turn;
    worker.send({ type: "chunk", chatId: "running", content: "Half", turnId: turn.id });
    assertEquals((await cancel("running")).body, { cancelled: true });
    await worker.waitFor((es) => es.some((e) => e.type === "cancel" && e.turnId === turn.id));
    const renew = await workerCall(worker, {
      type: "renew",
      turnId: turn.id,
      leaseId: turn.leaseId,
    });
    assertEquals(renew.result.cancelRequested, true);
    await workerCall(worker, {
      type: "reply",
      chatId: "running",
      content: "Half",
      replyTo: turn.id,
      leaseId: turn.leaseId,
      stopped: true,
    });
    const reply = (await messages(relay.url, token, "running")).at(-1);
    assertEquals([reply.sender, reply.content, reply.stopped], ["Terra", "Half", true]);
    await worker.close();
  });
});

Deno.test("waiting visitors see their place in line move up", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const sockets = await Promise.all(
      ["q0", "q1", "q2"].map((c) => visitorSocket(relay.url, c, token)),
    );
    for (const chatId of ["q0", "q1", "q2"]) await postMessage(relay.url, token, chatId, "hi");
    const position = (i: number) =>
      sockets[i]!.events.filter((e) => e.type === "workerState" && e.state === "queued").at(-1)
        ?.queuePosition;
    await sockets[2]!.waitFor(() => position(2) === 2, 10_000, "position 2");
    const detail = sockets[2]!.events.filter((e) => e.type === "workerState").at(-1).detail;
    assertEquals(detail, "2 chats ahead of you");
    assertEquals([position(0), position(1)], [0, 1]);

    await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "w" });
    await sockets[2]!.waitFor(() => position(2) === 1, 10_000, "moved up");
    await sockets[1]!.waitFor(() => position(1) === 0, 10_000, "next in line");
    assertEquals(
      sockets[0]!.events.filter((e) => e.type === "workerState").at(-1).state,
      "processing",
    );
    await Promise.all(sockets.map((s) => s.close()));
  });
});
