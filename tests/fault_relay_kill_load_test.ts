/**
 * The relay killed (SIGKILL) and restarted on the same KV file and port while visitors of
 * several chats keep posting and a real worker keeps answering (issue 7, SPEC §8): every
 * message whose POST was acknowledged is stored afterwards, and every stored question gets
 * exactly one reply. (relay_restart_test.ts covers one question and one answer in detail.)
 */
import { startModelServer } from "../lib/demo_model/model_server.ts";
import { assert, assertEquals } from "./_assert.ts";
import { chatHistory, type Json, postMessage, sleep, visitorToken } from "./_clients.ts";
import { type RelayProcess, startRelay } from "./_relay_process.ts";
import { startWorker, type WorkerProcess } from "./_worker_process.ts";

const CHATS = 6;
const MESSAGES_PER_CHAT = 6;
const RELAY_ENV = {
  RATE_LIMIT_MAX_PER_IP: "10000",
  RATE_LIMIT_MAX_PER_CHAT: "10000",
  MAX_PENDING_TURNS_PER_CHAT: "20",
  TURN_LEASE_SECONDS: "3",
};

/**
 * One visitor posting its questions in turn until `MESSAGES_PER_CHAT` are acknowledged
 * (bounded by attempts): a POST that fails while the relay is down is not acknowledged, and
 * may or may not have been stored. Returns how many POSTs failed.
 */
async function poster(
  base: () => string,
  token: string,
  chatId: string,
  acknowledged: Json[],
): Promise<number> {
  let failed = 0;
  for (let i = 0; i < 400 && acknowledged.length < MESSAGES_PER_CHAT; i++) {
    try {
      const res = await postMessage(base(), token, chatId, `[answer]Reply ${chatId}/${i}[/answer]`);
      if (res.status === 201) acknowledged.push(res.body);
      else failed++;
    } catch {
      failed++;
    }
    await sleep(40);
  }
  return failed;
}

Deno.test("SIGKILL under load: every acknowledged message survives and every question is answered exactly once", async () => {
  let relay: RelayProcess = await startRelay(RELAY_ENV);
  const { dir, port } = relay;
  const model = startModelServer({ chunkDelayMs: 1 });
  let worker: WorkerProcess | null = null;
  try {
    worker = await startWorker(relay.url, model.url, dir, { MAX_CONCURRENT_CHATS: "3" });
    const token = await visitorToken(relay.url);
    const chats = Array.from({ length: CHATS }, (_, i) => `load-${i}`);
    const acknowledged = new Map<string, Json[]>(chats.map((c) => [c, []]));
    const posting = Promise.all(
      chats.map((chatId) => poster(() => relay.url, token, chatId, acknowledged.get(chatId)!)),
    );

    // Kill the relay once a third of the questions are in, with answers streaming.
    const acked = () => [...acknowledged.values()].reduce((n, a) => n + a.length, 0);
    for (let i = 0; i < 200 && acked() < (CHATS * MESSAGES_PER_CHAT) / 3; i++) await sleep(25);
    const beforeKill = acked();
    await relay.kill();
    relay = await startRelay(RELAY_ENV, { dir, port });
    await posting;
    assert(
      beforeKill > 0 && acked() > beforeKill,
      `posts before and after (${beforeKill}/${acked()})`,
    );

    // Bounded wait until every stored question has a reply.
    const histories = new Map<string, Json[]>();
    const unanswered = () =>
      [...histories.values()].flat().filter((m) =>
        m.sender === "Visitor" &&
        ![...histories.values()].flat().some((r) => r.sender === "Terra" && r.replyTo === m.id)
      );
    for (let i = 0; i < 600; i++) {
      for (const chatId of chats) {
        histories.set(chatId, await chatHistory(relay.url, token, chatId));
      }
      if (unanswered().length === 0 && histories.size === CHATS) break;
      await sleep(100);
    }
    assertEquals(unanswered().map((m) => m.content), [], "every stored question is answered");

    for (const chatId of chats) {
      const history = histories.get(chatId)!;
      const questions = history.filter((m) => m.sender === "Visitor");
      const replies = history.filter((m) => m.sender === "Terra");
      // Nothing acknowledged was lost, byte for byte.
      for (const message of acknowledged.get(chatId)!) {
        assertEquals(questions.find((q) => q.id === message.id), message, `${chatId}: kept`);
      }
      // Exactly one reply per question: none twice, none for a question that is not there.
      assertEquals(
        replies.map((r) => r.replyTo).sort(),
        questions.map((q) => q.id).sort(),
        `${chatId}: one reply per question`,
      );
      const seqs = history.map((m) => m.seq);
      assertEquals(seqs, [...new Set(seqs)].sort((a, b) => a - b), `${chatId}: ordered seqs`);
    }
  } finally {
    await worker?.kill();
    await model.close();
    await relay.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
