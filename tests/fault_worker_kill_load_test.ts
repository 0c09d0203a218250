/**
 * One of two workers killed (SIGKILL) while both stream answers to several chats (issue 7,
 * SPEC §3 work distribution): the turns the dead worker held go back to the queue when
 * their leases run out, the surviving worker answers them in full, and every question is
 * answered exactly once. (worker_flow_test.ts covers one turn, one worker, then a new one.)
 */
import { startModelServer } from "../lib/demo_model/model_server.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  applyChunks,
  chatHistory,
  type Json,
  postMessage,
  type RecordingSocket,
  sleep,
  visitorSocket,
  visitorToken,
} from "./_clients.ts";
import { startRelay } from "./_relay_process.ts";
import { startWorker, type WorkerProcess } from "./_worker_process.ts";

const CHATS = 6;
const WORDS = 300;

/** The relay's "turn claimed" log lines, as [workerId, chatId]. */
function claims(lines: string[]): [string, string][] {
  return lines.filter((l) => l.includes('"msg":"turn claimed"')).map((l) => {
    const entry = JSON.parse(l);
    return [entry.workerId, entry.chatId];
  });
}

Deno.test("a worker killed mid-answer under load: its turns go to the other worker and every question is answered once", async () => {
  const relay = await startRelay({ RATE_LIMIT_MAX_PER_IP: "1000", TURN_LEASE_SECONDS: "2" });
  const model = startModelServer({ chunkDelayMs: 2 });
  const workers: WorkerProcess[] = [];
  const visitors: RecordingSocket[] = [];
  try {
    const token = await visitorToken(relay.url);
    const [doomed, survivor] = await Promise.all(
      ["w-doomed", "w-survivor"].map((id) =>
        startWorker(relay.url, model.url, relay.dir, { WORKER_ID: id, MAX_CONCURRENT_CHATS: "2" })
      ),
    );
    workers.push(doomed!, survivor!);
    const chats = Array.from({ length: CHATS }, (_, i) => `busy-${i}`);
    for (const chatId of chats) visitors.push(await visitorSocket(relay.url, chatId, token));
    const questions = new Map<string, Json>();
    for (const chatId of chats) {
      const posted = await postMessage(relay.url, token, chatId, `[long ${WORDS}] ${chatId}?`);
      assertEquals(posted.status, 201);
      questions.set(chatId, posted.body);
    }

    // Kill the doomed worker while it streams: it holds a turn and its visitor saw words.
    let held: string[] = [];
    for (let i = 0; i < 400 && held.length === 0; i++) {
      held = claims(relay.lines).filter(([w]) => w === "w-doomed").map(([, c]) => c)
        .filter((chatId) =>
          visitors[chats.indexOf(chatId)]!.events.some((e) =>
            e.type === "assistantChunk" && e.kind === "answer" && e.content.includes("word5")
          )
        );
      if (held.length === 0) await sleep(25);
    }
    assert(held.length > 0, "the doomed worker was streaming an answer");
    await doomed!.kill();

    for (const [i, chatId] of chats.entries()) {
      await visitors[i]!.waitFor(
        (es) => es.some((e) => e.type === "message" && e.sender === "Terra"),
        60_000,
        `${chatId} reply`,
      );
    }
    // Past another lease period: still nothing answered twice.
    await sleep(2_500);
    for (const chatId of chats) {
      const history = await chatHistory(relay.url, token, chatId);
      assertEquals(history.map((m) => m.sender), ["Visitor", "Terra"], chatId);
      assertEquals(history[1].replyTo, questions.get(chatId).id);
      assert(history[1].content.endsWith(`word${WORDS}`), `${chatId}: the whole answer`);
    }
    // The turns the dead worker held went to the survivor as a second attempt, and their
    // visitors, who saw the first attempt's words, rebuild exactly the stored answer.
    const attempts = relay.lines.filter((l) => l.includes('"msg":"turn claimed"'))
      .map((l) => JSON.parse(l));
    for (const chatId of held) {
      const last = attempts.filter((a) => a.chatId === chatId).at(-1);
      assertEquals([last?.workerId, last?.attempt], ["w-survivor", 2], chatId);
      const reply = (await chatHistory(relay.url, token, chatId))[1];
      assertEquals(applyChunks(visitors[chats.indexOf(chatId)]!.events), reply.content, chatId);
    }
  } finally {
    await Promise.all(visitors.map((v) => v.close()));
    await Promise.all(workers.map((w) => w.kill()));
    await model.close();
    await relay.kill();
    await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
  }
});
