/** The relay killed (SIGKILL) and restarted on the same KV file loses nothing. */
import { assert, assertEquals } from "./_assert.ts";
import {
  type Json,
  postMessage,
  request,
  visitorSocket,
  visitorToken,
  workerRequest,
} from "./_clients.ts";
import { startRelay } from "./_relay_process.ts";

Deno.test("SIGKILL mid-answer: messages, the open turn and the partial answer survive a restart", async () => {
  let relay = await startRelay();
  const { dir, port } = relay;
  try {
    const token = await visitorToken(relay.url);
    const first = await postMessage(relay.url, token, "durable", "First question");
    await workerRequest(relay.url, "/api/chat/durable/agent", {
      content: "First answer",
      replyTo: first.body.id,
    });
    const question = await postMessage(relay.url, token, "durable", "Second question");
    const claim = await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "w1" });
    const turn = claim.body.turn;
    assertEquals(turn.messageId, question.body.id);

    const visitor = await visitorSocket(relay.url, "durable", token);
    for (const content of ["Partial ", "answer ", "so far"]) {
      const res = await workerRequest(relay.url, "/api/chat/durable/agent-chunk", {
        content,
        turnId: turn.id,
      });
      assertEquals(res.status, 200);
    }
    const seen = await visitor.waitFor((es) =>
      es.filter((e) => e.type === "assistantChunk").length === 3
    );
    const lastSeq = Math.max(...seen.map((e: Json) => e.seq ?? 0));
    // The partial answer is written through at most every 250 ms.
    await new Promise((r) => setTimeout(r, 600));
    await relay.kill();
    await visitor.close();

    relay = await startRelay({}, { dir, port });
    const history = await request(`${relay.url}/api/chat/durable/messages`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(history.body.map((m: Json) => m.content), [
      "First question",
      "First answer",
      "Second question",
    ]);
    // The turn is still leased to w1 (leases live in KV), not lost and not answered.
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds, []);
    const renewed = await workerRequest(relay.url, `/api/worker/turns/${turn.id}/renew`, {
      leaseId: turn.leaseId,
    });
    assertEquals(renewed.status, 200);

    // A visitor that saw everything up to lastSeq resumes: nothing is replayed twice.
    const resumed = await visitorSocket(relay.url, "durable", token, lastSeq);
    assertEquals(resumed.events.map((e) => e.type), ["ready"]);
    // A visitor that saw only the question gets the partial answer as a snapshot.
    const late = await visitorSocket(relay.url, "durable", token, question.body.seq);
    const snapshot = late.events.find((e) => e.type === "assistantChunk");
    assertEquals([snapshot.content, snapshot.offset, snapshot.turnId], [
      "Partial answer so far",
      0,
      turn.id,
    ]);

    // The worker carries on; new events are numbered above everything seen before.
    const more = await workerRequest(relay.url, "/api/chat/durable/agent-chunk", {
      content: ".",
      turnId: turn.id,
    });
    assert(more.body.seq > lastSeq, `${more.body.seq} > ${lastSeq}`);
    assertEquals(more.body.offset, "Partial answer so far".length);
    const reply = await workerRequest(relay.url, "/api/chat/durable/agent", {
      content: "Partial answer so far.",
      replyTo: turn.id,
      leaseId: turn.leaseId,
    });
    assertEquals(reply.status, 201);
    await resumed.waitFor((es) => es.some((e) => e.type === "message" && e.sender === "Terra"));
    const chunk = resumed.events.find((e) => e.type === "assistantChunk");
    assertEquals([chunk.content, chunk.offset], [".", 21]);
    await Promise.all([resumed.close(), late.close()]);
  } finally {
    await relay.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("SIGKILL right after a visitor message: the question is kept and still waits for a worker", async () => {
  let relay = await startRelay();
  const { dir, port } = relay;
  try {
    const token = await visitorToken(relay.url);
    const posted = await postMessage(relay.url, token, "kept", "Are you there?");
    assertEquals(posted.status, 201);
    await relay.kill();

    relay = await startRelay({}, { dir, port });
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body.chatIds, ["kept"]);
    const claim = await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "w2" });
    assertEquals(claim.body.turn.messageId, posted.body.id);
  } finally {
    await relay.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("SIGTERM closes visitor sockets with 1001 and exits cleanly", async () => {
  const relay = await startRelay();
  try {
    const token = await visitorToken(relay.url);
    await postMessage(relay.url, token, "bye", "Hello");
    const visitor = await visitorSocket(relay.url, "bye", token);
    assertEquals(await relay.stop(), 0);
    assertEquals(await visitor.waitClosed(), 1001);
    const again = await startRelay({}, { dir: relay.dir, port: relay.port });
    try {
      const history = await request(`${again.url}/api/chat/bye/messages`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assertEquals(history.body.length, 1);
    } finally {
      await again.kill();
    }
  } finally {
    await relay.kill();
    await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
  }
});
