/**
 * The `ChatStore` contract as tests, run against every engine (`kv_store_test.ts` for Deno
 * KV; the Redis engine runs the same suite): every operation, compare-and-set under
 * concurrent writers (one winner), sequence numbers above all earlier ones after a reopen,
 * and retention deleting everything of a chat.
 */
import { assert, assertEquals } from "../../../tests/_assert.ts";
import type { ChatMessage, WorkerStateEvent } from "../../protocol.ts";
import {
  type ChatRecord,
  type ChatStore,
  MAX_STORED_VALUE_BYTES,
  type PartialAnswer,
  type TurnRecord,
} from "./chat_store.ts";

/** One engine's store under test, on fresh, empty storage. */
export interface StoreUnderTest {
  store: ChatStore;
  /** Closes `store` if the engine must, and opens the same data again as a new instance. */
  reopen(): Promise<ChatStore>;
  /** Closes the store last opened and removes what the engine left behind. */
  dispose(): Promise<void>;
}

const AT = "2026-01-01T00:00:00.000Z";

function chat(id: string): ChatRecord {
  return { id, createdAt: AT, lastActivityAt: AT, clientIp: "192.0.2.1", userAgent: "t" };
}

function message(chatId: string, seq: number, sender: "Visitor" | "Terra" = "Visitor") {
  return { id: `${chatId}-m${seq}`, chatId, sender, content: `#${seq}`, createdAt: AT, seq };
}

function turnFor(m: ChatMessage, createdAtMs: number): TurnRecord {
  return {
    id: m.id,
    chatId: m.chatId,
    messageId: m.id,
    createdAtMs,
    status: "pending",
    attempt: 0,
    leaseId: null,
    workerId: null,
    leaseExpiresAtMs: 0,
    cancelRequested: false,
    replySeq: null,
    messageSeq: m.seq,
  };
}

function workerState(chatId: string, seq: number): WorkerStateEvent {
  return { type: "workerState", chatId, state: "queued", detail: "d", updatedAt: AT, seq };
}

function partial(seq: number, answer: string): PartialAnswer {
  return {
    turnId: "t",
    seq,
    texts: { answer, reasoning: "", tool: "" },
    done: false,
    updatedAt: AT,
  };
}

/** Stores one chat's partial answer through the batch method; whether it was stored. */
async function setPartial(store: ChatStore, chatId: string, p: PartialAnswer): Promise<boolean> {
  const [stored] = await store.setPartials([{ chatId, partial: p }]);
  return stored!;
}

/** Stores a visitor message with its turn; returns the turn and its version. */
async function asked(store: ChatStore, chatId: string, seq: number, createdAtMs = seq) {
  const m = message(chatId, seq);
  const turn = turnFor(m, createdAtMs);
  const version = await store.putVisitorMessage(chat(chatId), m, turn);
  assert(version, "a new turn is stored");
  return { message: m, turn, version };
}

/** Registers the conformance tests of one engine, each named `${name}: …`. */
export function runStoreConformance(name: string, make: () => Promise<StoreUnderTest>): void {
  const test = (title: string, fn: (t: StoreUnderTest) => Promise<void>) =>
    Deno.test(`${name}: ${title}`, async () => {
      const under = await make();
      try {
        await fn(under);
      } finally {
        await under.dispose();
      }
    });

  test("nextSeq() rises per chat and stays above every earlier number after a reopen", async (t) => {
    const a = [await t.store.nextSeq("a"), await t.store.nextSeq("a"), await t.store.nextSeq("a")];
    assert(a[0]! < a[1]! && a[1]! < a[2]!, `rising: ${a}`);
    assertEquals(await t.store.nextSeq("b") > 0, true);
    let store = await t.reopen();
    const after = await store.nextSeq("a");
    assert(after > a[2]!, `${after} after a reopen is above ${a[2]}`);
    store = await t.reopen();
    assert(await store.nextSeq("a") > after, "and after a second reopen");
  });

  test("putVisitorMessage() stores the message, the chat and an open turn, once", async (t) => {
    const { message: m, turn, version } = await asked(t.store, "c", 1);
    assertEquals(await t.store.getMessage("c", 1), m);
    assertEquals(await t.store.getChat("c"), chat("c"));
    assertEquals(await t.store.getTurn(turn.id), { turn, version });
    assertEquals((await t.store.listOpenTurns()).map((o) => o.turn.id), [turn.id]);
    // The same turn again (a message stored twice) writes nothing, not even its message.
    const again = { ...message("c", 2), id: m.id };
    assertEquals(await t.store.putVisitorMessage(chat("c"), again, turnFor(again, 2)), null);
    assertEquals(await t.store.getMessage("c", 2), null);
    assertEquals(await t.store.getTurn("nope"), null);
  });

  test("updateTurn() is a compare-and-set on the turn's version", async (t) => {
    const { turn, version } = await asked(t.store, "c", 1);
    const leased: TurnRecord = { ...turn, status: "leased", attempt: 1, leaseId: "L1" };
    const next = await t.store.updateTurn(leased, version);
    assert(next && next !== version, "a new version");
    assertEquals(await t.store.updateTurn({ ...leased, leaseId: "L2" }, version), null);
    assertEquals(await t.store.getTurn(turn.id), { turn: leased, version: next });
    assertEquals((await t.store.listOpenTurns()).map((o) => o.turn.leaseId), ["L1"]);
  });

  test("of many concurrent claimers holding one version, exactly one wins", async (t) => {
    const { turn, version } = await asked(t.store, "c", 1);
    const results = await Promise.all(
      Array.from(
        { length: 12 },
        (_, i) => t.store.updateTurn({ ...turn, status: "leased", leaseId: `L${i}` }, version),
      ),
    );
    const winners = results.flatMap((r, i) => r ? [i] : []);
    assertEquals(winners.length, 1);
    assertEquals((await t.store.getTurn(turn.id))?.turn.leaseId, `L${winners[0]}`);
  });

  test("closeTurn() stores the reply and closes the turn together, once", async (t) => {
    const { turn, version } = await asked(t.store, "c", 1);
    assert(await setPartial(t.store, "c", partial(2, "Hel")));
    const reply = message("c", 3, "Terra");
    const done: TurnRecord = { ...turn, status: "done", replySeq: 3 };
    const closers = await Promise.all([
      t.store.closeTurn(done, version, { messages: [reply], deletePartialOf: "c" }),
      t.store.closeTurn({ ...done, replySeq: 4 }, version, {
        messages: [message("c", 4, "Terra")],
      }),
    ]);
    assertEquals(closers.filter((v) => v !== null).length, 1, "one reply lands");
    const stored = await t.store.getTurn(turn.id);
    const won = stored?.turn.replySeq;
    assertEquals((await t.store.listMessages("c")).map((m) => m.seq), [1, won!]);
    assertEquals(await t.store.listOpenTurns(), []);
    if (won === 3) assertEquals(await t.store.getPartial("c"), null);
    // A close with the version it was judged by, now stale, writes nothing.
    assertEquals(await t.store.closeTurn(done, version, { messages: [message("c", 9)] }), null);
    assertEquals(await t.store.getMessage("c", 9), null);
  });

  test("reopenTurn() puts a closed turn back among the open ones, by its new arrival", async (t) => {
    const first = await asked(t.store, "a", 1, 10);
    await asked(t.store, "b", 1, 20);
    const failed: TurnRecord = {
      ...first.turn,
      status: "failed",
      failure: { code: "x", error: "X.", failedAt: AT },
    };
    const closed = await t.store.closeTurn(failed, first.version, {});
    assert(closed);
    assertEquals((await t.store.listOpenTurns()).map((o) => o.turn.chatId), ["b"]);
    const cleared = { ...first.message, content: "cleared" };
    const { failure: _f, ...pending } = { ...failed, status: "pending" as const, createdAtMs: 30 };
    assertEquals(await t.store.reopenTurn(pending, first.version, {}), null, "stale version");
    assert(await t.store.reopenTurn(pending, closed, { messages: [cleared] }));
    assertEquals((await t.store.listOpenTurns()).map((o) => o.turn.chatId), ["b", "a"]);
    assertEquals((await t.store.getMessage("a", 1))?.content, "cleared");
    const store = await t.reopen();
    assertEquals((await store.listOpenTurns()).map((o) => o.turn.chatId), ["b", "a"]);
  });

  test("listOpenTurns() gives arrival order, and versions that still work after a reopen", async (t) => {
    await asked(t.store, "late", 1, 300);
    await asked(t.store, "early", 1, 100);
    await asked(t.store, "mid", 1, 200);
    assertEquals((await t.store.listOpenTurns()).map((o) => o.turn.chatId), [
      "early",
      "mid",
      "late",
    ]);
    const store = await t.reopen();
    const [oldest] = await store.listOpenTurns();
    assert(await store.updateTurn({ ...oldest!.turn, status: "leased" }, oldest!.version));
  });

  test("listMessages() pages by sequence number; writeChat() commits messages and deletes the partial", async (t) => {
    await asked(t.store, "c", 1);
    assert(await setPartial(t.store, "c", partial(2, "x")));
    assert(
      await t.store.writeChat({
        messages: [message("c", 5, "Terra"), message("c", 7, "Terra")],
        deletePartialOf: "c",
      }),
    );
    assertEquals(await t.store.getPartial("c"), null);
    assertEquals((await t.store.listMessages("c")).map((m) => m.seq), [1, 5, 7]);
    assertEquals((await t.store.listMessages("c", 1)).map((m) => m.seq), [5, 7]);
    assertEquals((await t.store.listMessages("c", 0, 2)).map((m) => m.seq), [1, 5]);
    assertEquals(await t.store.listMessages("c", 0, 0), []);
    assertEquals(await t.store.listMessages("other"), []);
    assertEquals(await t.store.getMessage("c", 6), null);
  });

  test("worker states, partial answers and site words are stored and replaced", async (t) => {
    assertEquals(await t.store.getWorkerState("c"), null);
    await t.store.setWorkerState(workerState("c", 1));
    await t.store.setWorkerState(workerState("c", 2));
    assertEquals((await t.store.getWorkerState("c"))?.seq, 2);

    assertEquals(await t.store.getPartial("c"), null);
    assert(await setPartial(t.store, "c", partial(3, "Hel")));
    assert(await setPartial(t.store, "c", partial(4, "Hello")));
    assertEquals(await t.store.getPartial("c"), partial(4, "Hello"));
    if (t.store.shared) {
      assert(await setPartial(t.store, "c", partial(3, "Hel")), "an older copy is no error");
      assertEquals(await t.store.getPartial("c"), partial(4, "Hello"), "and does not replace");
    }
    const huge = partial(5, "x".repeat(MAX_STORED_VALUE_BYTES));
    assertEquals(await setPartial(t.store, "c", huge), false, "too large: refused");
    assertEquals((await t.store.getPartial("c"))?.seq, 4, "and nothing written");
    await t.store.deletePartial("c");
    await t.store.deletePartial("c");
    assertEquals(await t.store.getPartial("c"), null);

    // One batch for many chats, past one commit's limits, a too-large one among them.
    const chats = Array.from({ length: 230 }, (_, i) => `batch-${i}`);
    const answer = "y".repeat(5_000);
    const stored = await t.store.setPartials(
      chats.map((chatId, i) => ({
        chatId,
        partial: partial(10 + i, i === 7 ? huge.texts.answer : answer),
      })),
    );
    assertEquals(stored.filter((ok) => !ok).length, 1, "only the huge one refused");
    assertEquals(stored[7], false);
    for (const [i, chatId] of chats.entries()) {
      assertEquals((await t.store.getPartial(chatId))?.seq, i === 7 ? undefined : 10 + i, chatId);
    }

    assertEquals(await t.store.getSiteProfile(), null);
    const site = {
      siteName: "S",
      assistantName: "T",
      gateText: "",
      accessHelp: "",
      greeting: "Hi",
      suggestions: ["a"],
      offlineText: "",
    };
    await t.store.setSiteProfile(site);
    assertEquals(await (await t.reopen()).getSiteProfile(), site);
  });

  test("worker records are stored, the latest write per worker", async (t) => {
    const online = { status: "online" as const, detail: "" };
    await t.store.putWorker(
      { workerId: "w1", lastSeenAtMs: 1, report: null, reportedAtMs: 0 },
      60_000,
    );
    await t.store.putWorker(
      { workerId: "w1", lastSeenAtMs: 2, report: null, reportedAtMs: 0 },
      60_000,
    );
    await t.store.putWorker({
      workerId: "w2",
      lastSeenAtMs: 3,
      report: { agentApi: online, llm: online },
      reportedAtMs: 3,
    }, 60_000);
    const workers = (await t.store.listWorkers()).sort((a, b) => a.lastSeenAtMs - b.lastSeenAtMs);
    assertEquals(workers.map((w) => [w.workerId, w.lastSeenAtMs]), [["w1", 2], ["w2", 3]]);
  });

  test("deleteChat() removes everything of the chat and nothing of another (retention)", async (t) => {
    await t.store.nextSeq("gone");
    const q = await asked(t.store, "gone", 1);
    const done: TurnRecord = { ...q.turn, status: "done", replySeq: 2 };
    assert(await t.store.closeTurn(done, q.version, { messages: [message("gone", 2, "Terra")] }));
    await t.store.setWorkerState(workerState("gone", 3));
    assert(await setPartial(t.store, "gone", partial(4, "x")));
    const kept = await asked(t.store, "kept", 1);

    await t.store.deleteChat("gone");
    assertEquals(await t.store.getChat("gone"), null);
    assertEquals(await t.store.listMessages("gone"), []);
    assertEquals(await t.store.getTurn(q.turn.id), null);
    assertEquals(await t.store.getWorkerState("gone"), null);
    assertEquals(await t.store.getPartial("gone"), null);
    const chats: string[] = [];
    for await (const record of t.store.listChats()) chats.push(record.id);
    assertEquals(chats, ["kept"]);
    assertEquals((await t.store.getTurn(kept.turn.id))?.turn.status, "pending");
    assertEquals((await t.store.listMessages("kept")).length, 1);
  });
}
