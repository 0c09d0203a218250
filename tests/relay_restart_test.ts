/**
 * The relay process killed (SIGKILL) or stopped (SIGTERM) and restarted on the same KV file:
 * no visitor question, stored reply, open turn, lease or streamed partial answer is lost,
 * and sequence numbers keep growing across the restart.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  applyChunks,
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
import { type RelayProcess, startRelay } from "./_relay_process.ts";

/** The partial answer is written through to KV at most every 250 ms; wait past that. */
const PERSIST_WAIT_MS = 400;

const maxSeq = (events: Json[]) =>
  Math.max(
    0,
    ...events.filter((e) => e.type !== "ready" && typeof e.seq === "number").map((e) => e.seq),
  );

/** Starts a relay, runs `fn` with a way to restart it on the same KV dir and port. */
async function withRestartableRelay(
  env: Record<string, string>,
  fn: (
    current: () => RelayProcess,
    restart: (how: "kill" | "none") => Promise<RelayProcess>,
  ) => Promise<void>,
): Promise<void> {
  let relay = await startRelay(env);
  const { dir, port } = relay;
  try {
    await fn(() => relay, async (how) => {
      if (how === "kill") await relay.kill();
      relay = await startRelay(env, { dir, port });
      return relay;
    });
  } finally {
    await relay.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function closeAll(...sockets: (RecordingSocket | null)[]): Promise<void> {
  await Promise.all(sockets.map((s) => s?.close()));
}

Deno.test("SIGKILL right after a question is acknowledged: after restart it is stored, still open and claimable", async () => {
  await withRestartableRelay({}, async (current, restart) => {
    let relay = current();
    const token = await visitorToken(relay.url);
    const visitor = await visitorSocket(relay.url, "kept", token);
    let resumed: RecordingSocket | null = null;
    try {
      const posted = await postMessage(relay.url, token, "kept", "Are you still there?");
      assertEquals(posted.status, 201, JSON.stringify(posted.body));
      // No pause: the acknowledgement alone must mean the question is durable.
      relay = await restart("kill");
      await visitor.waitClosed();

      const stored = await chatHistory(relay.url, token, "kept");
      assertEquals(stored, [posted.body], "the acknowledged message survived byte for byte");
      assertEquals(await openChatIds(relay.url), ["kept"], "the turn is still waiting");

      // The visitor comes back and is told it is waiting (the restarted relay announces it).
      resumed = await visitorSocket(relay.url, "kept", token, posted.body.seq);
      await resumed.waitFor(
        (es) => es.some((e) => e.type === "workerState" && e.state === "queued"),
        10_000,
        "queued state after restart",
      );
      const queued = resumed.events.find((e) => e.type === "workerState" && e.state === "queued");
      assertEquals([queued.queuePosition, queued.detail], [0, "You're next in line"]);
      assert(queued.seq > posted.body.seq, "numbers after the restart are above the question's");

      const claim = await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "w2" });
      assertEquals(claim.status, 200);
      assertEquals([claim.body.turn?.messageId, claim.body.turn?.attempt], [posted.body.id, 1]);
      assertEquals(await openChatIds(relay.url), []);
      const reply = await workerRequest(relay.url, "/api/chat/kept/agent", {
        content: "Yes, after a restart.",
        replyTo: claim.body.turn.id,
        leaseId: claim.body.turn.leaseId,
      });
      assertEquals(reply.status, 201, JSON.stringify(reply.body));
      await resumed.waitFor(
        (es) => es.some((e) => e.type === "message" && e.sender === "Terra"),
        10_000,
        "the answer",
      );
      assertEquals((await chatHistory(relay.url, token, "kept")).map((m) => m.sender), [
        "Visitor",
        "Terra",
      ]);
    } finally {
      await closeAll(visitor, resumed);
    }
  });
});

Deno.test("SIGKILL mid-answer: after restart nothing stored is lost, the visitor resumes and the same worker finishes the answer", async () => {
  await withRestartableRelay({}, async (current, restart) => {
    let relay = current();
    const token = await visitorToken(relay.url);
    const sockets: RecordingSocket[] = [];
    try {
      // An earlier exchange, and another chat still waiting, both of which must survive.
      const q1 = await postMessage(relay.url, token, "midway", "First question");
      const t1 = (await workerRequest(relay.url, "/api/worker/turns/claim", {
        workerId: "w1",
        chatId: "midway",
      })).body.turn;
      const a1 = await workerRequest(relay.url, "/api/chat/midway/agent", {
        content: "First answer",
        replyTo: t1.id,
        leaseId: t1.leaseId,
      });
      assertEquals(a1.status, 201, JSON.stringify(a1.body));
      const waiting = await postMessage(relay.url, token, "bystander", "Still waiting here");

      const visitor = await visitorSocket(relay.url, "midway", token);
      sockets.push(visitor);
      const worker = await workerSocket(relay.url, "w1");
      sockets.push(worker);
      const q2 = await postMessage(relay.url, token, "midway", "Second question");
      assertEquals(q2.status, 201);
      const claim = await workerCall(worker, { type: "claim", workerId: "w1", chatId: "midway" });
      assert(claim.ok, JSON.stringify(claim));
      const turn = claim.result.turn;
      assertEquals([turn.messageId, turn.attempt], [q2.body.id, 1]);

      // Stream over both transports: reasoning and answer over the socket, more over HTTP.
      worker.send({
        type: "chunk",
        chatId: "midway",
        kind: "reasoning",
        content: "The visitor asks twice.",
        turnId: turn.id,
        leaseId: turn.leaseId,
      });
      for (const content of ["Partial ", "answer "]) {
        worker.send({
          type: "chunk",
          chatId: "midway",
          content,
          turnId: turn.id,
          leaseId: turn.leaseId,
        });
      }
      // Order across two transports is the worker's job: let the socket's chunks land first.
      await visitor.waitFor(
        (es) => applyChunks(es) === "Partial answer ",
        10_000,
        "the socket's chunks",
      );
      for (const content of ["so ", "far"]) {
        const res = await workerRequest(relay.url, "/api/chat/midway/agent-chunk", {
          content,
          turnId: turn.id,
          leaseId: turn.leaseId,
        });
        assertEquals(res.status, 200, JSON.stringify(res.body));
      }
      const partialText = "Partial answer so far";
      await visitor.waitFor(
        (es) => applyChunks(es) === partialText && applyChunks(es, "reasoning") !== "",
        10_000,
        "the streamed chunks",
      );
      const seenBefore = [...visitor.events];
      const lastSeq = maxSeq(seenBefore);
      const storedBefore = await chatHistory(relay.url, token, "midway");
      assertEquals(storedBefore.map((m) => m.content), [
        "First question",
        "First answer",
        "Second question",
      ]);

      await sleep(PERSIST_WAIT_MS);
      relay = await restart("kill");
      assert((await visitor.waitClosed()) !== null, "the visitor noticed the relay went away");
      await worker.waitClosed();

      // Every stored message is still there, unchanged; nothing was added or answered.
      assertEquals(await chatHistory(relay.url, token, "midway"), storedBefore);
      assertEquals(await chatHistory(relay.url, token, "bystander"), [waiting.body]);
      assertEquals(q1.body.id, storedBefore[0].id);
      // The leased turn is neither answered nor offered again; the waiting chat still is.
      assertEquals(await openChatIds(relay.url), ["bystander"]);
      const state = await request(`${relay.url}/api/chat/midway/worker-state`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assertEquals(state.body.state, "processing");

      // A visitor that saw everything resumes with nothing replayed twice.
      const resumed = await visitorSocket(relay.url, "midway", token, lastSeq);
      sockets.push(resumed);
      assertEquals(resumed.events.map((e) => e.type), ["ready"]);
      assertEquals(resumed.events[0].seq, lastSeq);
      // A visitor that saw only the question gets the partial answer as snapshots at offset 0.
      const late = await visitorSocket(relay.url, "midway", token, q2.body.seq);
      sockets.push(late);
      assertEquals(late.events.at(-1).type, "ready");
      const snapshots = late.events.filter((e) => e.type === "assistantChunk");
      const byKind = Object.fromEntries(snapshots.map((e) => [e.kind, e]));
      assertEquals(
        [byKind.answer?.content, byKind.answer?.offset, byKind.answer?.turnId],
        [partialText, 0, turn.id],
      );
      assertEquals([byKind.reasoning?.content, byKind.reasoning?.offset], [
        "The visitor asks twice.",
        0,
      ]);
      assert(snapshots.every((e) => e.seq > q2.body.seq && e.seq <= lastSeq));

      // The worker reconnects; its lease survived in KV, so it carries on where it was.
      const worker2 = await workerSocket(relay.url, "w1");
      sockets.push(worker2);
      const renew = await workerCall(worker2, {
        type: "renew",
        turnId: turn.id,
        leaseId: turn.leaseId,
      });
      assert(renew.ok, JSON.stringify(renew));
      assertEquals(renew.result.cancelRequested, false);
      worker2.send({
        type: "chunk",
        chatId: "midway",
        content: ", and ",
        offset: partialText.length,
        turnId: turn.id,
        leaseId: turn.leaseId,
      });
      // Order across two transports is the worker's job: let the socket's chunk land first.
      await resumed.waitFor(
        (es) => applyChunks(es, "answer", partialText) === `${partialText}, and `,
        10_000,
        "the socket's chunk after the restart",
      );
      const more = await workerRequest(relay.url, "/api/chat/midway/agent-chunk", {
        content: "done.",
        turnId: turn.id,
        leaseId: turn.leaseId,
      });
      assertEquals(more.status, 200, JSON.stringify(more.body));
      assertEquals(more.body.offset, (partialText + ", and ").length);
      const finalText = `${partialText}, and done.`;
      const reply = await workerCall(worker2, {
        type: "reply",
        chatId: "midway",
        content: finalText,
        replyTo: turn.id,
        leaseId: turn.leaseId,
      });
      assert(reply.ok, JSON.stringify(reply));
      assertEquals(reply.result.duplicate, false);

      for (const socket of [resumed, late]) {
        await socket.waitFor(
          (es) => es.some((e) => e.type === "message" && e.sender === "Terra"),
          10_000,
          "the final reply",
        );
      }
      // The resumed visitor's text (what it had + what came after) is the whole answer.
      assertEquals(applyChunks(resumed.events, "answer", applyChunks(seenBefore)), finalText);
      assertEquals(applyChunks(late.events), finalText);
      const after = resumed.events.filter((e) => e.type !== "ready");
      assert(after.length >= 3, JSON.stringify(after));
      for (const e of after) {
        assert(e.seq > lastSeq, `seq ${e.seq} after the restart is above ${lastSeq}`);
      }
      const afterSeqs = after.map((e) => e.seq);
      assertEquals(afterSeqs, [...afterSeqs].sort((a, b) => a - b), "live events stay in order");
      assertEquals(new Set(afterSeqs).size, afterSeqs.length, "no number is used twice");

      const final = await chatHistory(relay.url, token, "midway");
      assertEquals(final.slice(0, 3), storedBefore);
      assertEquals(final.length, 4);
      assertEquals([final[3].sender, final[3].content, final[3].replyTo], [
        "Terra",
        finalText,
        q2.body.id,
      ]);
      assertEquals(await openChatIds(relay.url), ["bystander"]);
    } finally {
      await closeAll(...sockets);
    }
  });
});

Deno.test("SIGTERM closes every socket with 1001, exits 0 and keeps messages, the lease and the unflushed partial answer", async () => {
  await withRestartableRelay({}, async (current, restart) => {
    let relay = current();
    const token = await visitorToken(relay.url);
    const sockets: RecordingSocket[] = [];
    try {
      const q1 = await postMessage(relay.url, token, "graceful", "Hello");
      const t1 =
        (await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "w" })).body.turn;
      await workerRequest(relay.url, "/api/chat/graceful/agent", {
        content: "Hi there",
        replyTo: t1.id,
        leaseId: t1.leaseId,
      });
      const q2 = await postMessage(relay.url, token, "graceful", "Tell me more");
      const turn =
        (await workerRequest(relay.url, "/api/worker/turns/claim", { workerId: "w" })).body.turn;
      assertEquals(turn.messageId, q2.body.id);
      const visitors = await Promise.all([
        visitorSocket(relay.url, "graceful", token),
        visitorSocket(relay.url, "graceful", token, q1.body.seq),
      ]);
      sockets.push(...visitors);
      const worker = await workerSocket(relay.url, "w");
      sockets.push(worker);
      for (const content of ["More ", "is ", "coming"]) {
        const res = await workerRequest(relay.url, "/api/chat/graceful/agent-chunk", {
          content,
          turnId: turn.id,
          leaseId: turn.leaseId,
        });
        assertEquals(res.status, 200);
      }
      const storedBefore = await chatHistory(relay.url, token, "graceful");

      // No wait: the last chunks are not written through yet; shutdown must flush them.
      assertEquals(await relay.stop(), 0, "the relay exits cleanly on SIGTERM");
      for (const socket of visitors) assertEquals(await socket.waitClosed(), 1001);
      assertEquals(await worker.waitClosed(), 1001);
      assert(
        relay.lines.some((l) => l.includes('"msg":"stopped"')),
        "the relay logged a complete shutdown",
      );

      relay = await restart("none");
      assertEquals(await chatHistory(relay.url, token, "graceful"), storedBefore);
      assertEquals(await openChatIds(relay.url), [], "the turn is still leased to its worker");
      const renew = await workerRequest(relay.url, `/api/worker/turns/${turn.id}/renew`, {
        leaseId: turn.leaseId,
      });
      assertEquals(renew.status, 200, JSON.stringify(renew.body));
      const late = await visitorSocket(relay.url, "graceful", token, q2.body.seq);
      sockets.push(late);
      const snapshot = late.events.find((e) => e.type === "assistantChunk" && e.kind === "answer");
      assertEquals([snapshot?.content, snapshot?.offset], ["More is coming", 0]);
    } finally {
      await closeAll(...sockets);
    }
  });
});
