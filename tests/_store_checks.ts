/**
 * The store-consistency checks of the fuzz tests: a known chat with a finished exchange
 * that nothing fuzzed may change, and afterwards a relay that is up, has logged no internal
 * error, and still carries a new chat end to end (question, streamed chunk, stored reply).
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  chatHistory,
  type Json,
  postMessage,
  visitorSocket,
  workerCall,
  workerSocket,
} from "./_clients.ts";
import type { RelayProcess } from "./_relay_process.ts";

export const KNOWN_CHAT = "known-chat";

/** Makes the known chat (a question and its reply); returns its history. */
export async function knownChat(relay: RelayProcess, token: string): Promise<Json[]> {
  const worker = await workerSocket(relay.url, "w-known");
  try {
    assertEquals((await postMessage(relay.url, token, KNOWN_CHAT, "Known question")).status, 201);
    const turn = (await workerCall(worker, {
      type: "claim",
      workerId: "w-known",
      chatId: KNOWN_CHAT,
    })).result.turn;
    const reply = await workerCall(worker, {
      type: "reply",
      chatId: KNOWN_CHAT,
      content: "Known answer",
      replyTo: turn.id,
    });
    assert(reply.ok, JSON.stringify(reply));
  } finally {
    await worker.close();
  }
  const history = await chatHistory(relay.url, token, KNOWN_CHAT);
  assertEquals(history.map((m) => m.sender), ["Visitor", "Terra"]);
  return history;
}

/** The relay is up, the known chat unchanged, and a new chat works end to end. */
export async function assertIntact(
  relay: RelayProcess,
  token: string,
  known: Json[],
): Promise<void> {
  const healthz = await fetch(`${relay.url}/healthz`);
  assertEquals([healthz.status, await healthz.text()], [200, "ok\n"]);
  assertEquals(await chatHistory(relay.url, token, KNOWN_CHAT), known);
  const visitor = await visitorSocket(relay.url, "after-fuzz", token);
  const worker = await workerSocket(relay.url, "w-after");
  try {
    const question = await postMessage(relay.url, token, "after-fuzz", "Still there?");
    assertEquals(question.status, 201, JSON.stringify(question.body));
    const claim = await workerCall(worker, {
      type: "claim",
      workerId: "w-after",
      chatId: "after-fuzz",
    });
    assertEquals(claim.result.turn.messageId, question.body.id);
    const turnId = claim.result.turn.id;
    worker.send({ type: "chunk", chatId: "after-fuzz", content: "Yes", turnId });
    await workerCall(worker, {
      type: "reply",
      chatId: "after-fuzz",
      content: "Yes, still here.",
      replyTo: turnId,
    });
    await visitor.waitFor(
      (es) => es.some((e) => e.type === "message" && e.sender === "Terra"),
      10_000,
      "the reply",
    );
    assert(visitor.events.some((e) => e.type === "message" && e.id === question.body.id));
    assert(visitor.events.some((e) => e.type === "assistantChunk" && e.content === "Yes"));
    assertEquals(
      (await chatHistory(relay.url, token, "after-fuzz")).map((m) => m.content),
      ["Still there?", "Yes, still here."],
    );
  } finally {
    await Promise.all([visitor.close(), worker.close()]);
  }
  assertEquals(
    relay.lines.filter((l) => l.includes('"level":"error"')),
    [],
    "no request ended in an internal error",
  );
}
