/** End-to-end flow through a real relay process: message → claim → stream → reply → resume. */
import { assert, assertEquals } from "./_assert.ts";
import {
  postMessage,
  request,
  visitorSocket,
  visitorToken,
  workerCall,
  workerRequest,
  workerSocket,
} from "./_clients.ts";
import { withRelay } from "./_relay_process.ts";

Deno.test("a visitor question is claimed, streamed over the worker socket and answered once", async () => {
  await withRelay({}, async (relay) => {
    const token = await visitorToken(relay.url);
    const worker = await workerSocket(relay.url);
    const visitor = await visitorSocket(relay.url, "chat-flow", token);

    const posted = await postMessage(relay.url, token, "chat-flow", "What do you build?");
    assertEquals(posted.status, 201);
    assertEquals(posted.body.sender, "Visitor");
    await worker.waitFor((es) =>
      es.some((e) => e.type === "chat_activity" && e.chatId === "chat-flow")
    );

    const open = await workerRequest(relay.url, "/api/chats/open");
    assertEquals(open.body, { chatIds: ["chat-flow"] });

    const claim = await workerCall(worker, { type: "claim", workerId: "w1", chatId: "chat-flow" });
    assert(claim.ok, JSON.stringify(claim));
    const turn = claim.result.turn;
    assertEquals(turn.messageId, posted.body.id);
    assertEquals((await workerRequest(relay.url, "/api/chats/open")).body, { chatIds: [] });

    const pieces = ["Mostly ", "small ", "tools."];
    for (const content of pieces) {
      worker.send({ type: "chunk", chatId: "chat-flow", content, turnId: turn.id });
    }
    worker.send({ type: "chunk", chatId: "chat-flow", content: "", done: true, turnId: turn.id });
    const reply = await workerCall(worker, {
      type: "reply",
      chatId: "chat-flow",
      content: pieces.join(""),
      replyTo: turn.id,
      leaseId: turn.leaseId,
    });
    assert(reply.ok, JSON.stringify(reply));
    assertEquals(reply.result.duplicate, false);

    await visitor.waitFor((es) => es.some((e) => e.type === "message" && e.sender === "Terra"));
    const chunks = visitor.events.filter((e) => e.type === "assistantChunk" && e.kind === "answer");
    assertEquals(chunks.map((c) => c.content), [...pieces, ""]);
    assertEquals(chunks.map((c) => c.offset), [0, 7, 13, 19]);
    const seqs = visitor.events.filter((e) => typeof e.seq === "number" && e.type !== "ready").map((
      e,
    ) => e.seq);
    assertEquals(seqs, [...seqs].sort((a, b) => a - b), "events arrive in sequence order");

    // A retried reply is idempotent.
    const again = await workerRequest(relay.url, "/api/chat/chat-flow/agent", {
      content: "a different answer",
      replyTo: turn.id,
    });
    assertEquals(again.status, 200);
    assertEquals(again.body.duplicate, true);
    assertEquals(again.body.content, pieces.join(""));

    const history = await request(`${relay.url}/api/chat/chat-flow/messages`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(history.body.map((m: { sender: string }) => m.sender), ["Visitor", "Terra"]);

    // Resume: a socket that saw the visitor message gets only what came after.
    const resumed = await visitorSocket(relay.url, "chat-flow", token, posted.body.seq);
    const replayed = resumed.events.filter((e) => e.type === "message");
    assertEquals(replayed.map((m) => m.sender), ["Terra"]);
    assertEquals(resumed.events.at(-1).type, "ready");

    await Promise.all([worker.close(), visitor.close(), resumed.close()]);
  });
});
