import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { kvStore } from "./store/kv_store.ts";
import { TurnQueue, type TurnRecord } from "./turn_queue.ts";

/** Enqueues `turn` with a visitor message and chat record made up for it. */
function enqueue(queue: TurnQueue, turn: TurnRecord): Promise<void> {
  const at = new Date(turn.createdAtMs).toISOString();
  return queue.enqueue(
    turn,
    { id: turn.chatId, createdAt: at, lastActivityAt: at, clientIp: "192.0.2.1", userAgent: "t" },
    {
      id: turn.messageId,
      chatId: turn.chatId,
      sender: "Visitor",
      content: "?",
      createdAt: at,
      seq: turn.createdAtMs,
    },
  );
}

async function queueWith(chats: string[], leaseMs = 1000) {
  const store = kvStore(await Deno.openKv(":memory:"));
  const queue = new TurnQueue(store, leaseMs);
  let t = 1_000;
  for (const chatId of chats) {
    await enqueue(queue, TurnQueue.newTurn(chatId, `m-${chatId}-${t}`, t++));
  }
  return { store, queue };
}

Deno.test("claim() hands out the oldest turn and lists it no more as claimable", async () => {
  const { store, queue } = await queueWith(["a", "b"]);
  assertEquals(queue.claimableChats(2_000), ["a", "b"]);
  const turn = await queue.claim("w1", undefined, 2_000);
  assertEquals(turn?.chatId, "a");
  assertEquals(turn?.attempt, 1);
  assertEquals(queue.claimableChats(2_000), ["b"]);
  await store.close();
});

Deno.test("claim() hands an expired lease to the next worker, and the first loses it", async () => {
  const { store, queue } = await queueWith(["a"], 1000);
  const first = (await queue.claim("w1", undefined, 2_000))!;
  assertEquals(await queue.claim("w2", undefined, 2_500), null);
  const second = (await queue.claim("w2", undefined, 3_001))!;
  assertEquals(second.id, first.id);
  assertEquals(second.attempt, 2);
  assert(second.leaseId !== first.leaseId);
  await assertRejects(() => queue.renew(first.id, first.leaseId!, 3_100), "no longer yours");
  await store.close();
});

Deno.test("renew() keeps a lease alive past its first expiry", async () => {
  const { store, queue } = await queueWith(["a"], 1000);
  const turn = (await queue.claim("w1", undefined, 2_000))!;
  await queue.renew(turn.id, turn.leaseId!, 2_900);
  assertEquals(await queue.claim("w2", undefined, 3_500), null);
  await store.close();
});

Deno.test("a chat's second turn waits until its first is closed", async () => {
  const { store, queue } = await queueWith(["a", "a"]);
  const first = (await queue.claim("w1", undefined, 2_000))!;
  assertEquals(await queue.claim("w2", undefined, 2_000), null);
  await queue.close(first.id, "done", 7, {});
  const second = await queue.claim("w2", undefined, 2_000);
  assert(second && second.id !== first.id);
  await store.close();
});

Deno.test("close() is idempotent: the second close of a turn returns null", async () => {
  const { store, queue } = await queueWith(["a"]);
  const turn = (await queue.claim("w1", undefined, 2_000))!;
  assert(await queue.close(turn.id, "done", 3, {}));
  assertEquals(await queue.close(turn.id, "done", 4, {}), null);
  assertEquals((await queue.get(turn.id))?.replySeq, 3);
  await store.close();
});

Deno.test("concurrent claims never hand the same turn to two workers", async () => {
  const { store, queue } = await queueWith(["a", "b", "c"]);
  const claims = await Promise.all(
    Array.from({ length: 6 }, (_, i) => queue.claim(`w${i}`, undefined, 2_000)),
  );
  const ids = claims.filter((t) => t !== null).map((t) => t!.id);
  assertEquals(ids.length, 3);
  assertEquals(new Set(ids).size, 3);
  await store.close();
});

Deno.test("load() restores open turns with their leases after a restart", async () => {
  const path = await Deno.makeTempFile({ suffix: ".kv" });
  try {
    let store = kvStore(await Deno.openKv(path));
    let queue = new TurnQueue(store, 1000);
    await enqueue(queue, TurnQueue.newTurn("a", "m1", 1));
    await enqueue(queue, TurnQueue.newTurn("b", "m2", 2));
    const leased = (await queue.claim("w1", undefined, 2_000))!;
    await store.close();

    store = kvStore(await Deno.openKv(path));
    queue = new TurnQueue(store, 1000);
    assertEquals(await queue.load(), 2);
    assertEquals(queue.claimableChats(2_500), ["b"]);
    assertEquals(queue.currentTurn("a")?.leaseId, leased.leaseId);
    await store.close();
  } finally {
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("positions() counts waiting chats ahead, skipping chats being answered", async () => {
  const { store, queue } = await queueWith(["a", "b", "c"]);
  assertEquals([...queue.positions(2_000)], [["a", 0], ["b", 1], ["c", 2]]);
  await queue.claim("w1", undefined, 2_000);
  assertEquals([...queue.positions(2_000)], [["b", 0], ["c", 1]]);
  await store.close();
});

Deno.test("takeExpired() reports each expired lease once", async () => {
  const { store, queue } = await queueWith(["a"], 1000);
  await queue.claim("w1", undefined, 2_000);
  assertEquals(queue.takeExpired(2_500).length, 0);
  assertEquals(queue.takeExpired(3_100).length, 1);
  assertEquals(queue.takeExpired(3_200).length, 0);
  await store.close();
});

Deno.test("reopen() puts a failed turn back at the end of the queue, also after a reload", async () => {
  const { store, queue } = await queueWith(["a", "b"]);
  const turn = (await queue.claim("w1", "a", 2_000))!;
  assertEquals(await queue.reopen(turn.id, {}, 2_100), null, "only a failed turn");
  const failure = { code: "model_unavailable", error: "Down.", failedAt: "t" };
  const failed = await queue.close(turn.id, "failed", null, {}, failure);
  assertEquals([failed?.status, failed?.failure], ["failed", failure]);
  assertEquals(queue.claimableChats(2_200), ["b"]);

  const reopened = (await queue.reopen(turn.id, {}, 3_000))!;
  assertEquals([reopened.status, reopened.failure, reopened.createdAtMs], [
    "pending",
    undefined,
    3_000,
  ]);
  assertEquals(queue.claimableChats(3_100), ["b", "a"], "behind the chats that waited");
  assertEquals(await queue.reopen(turn.id, {}, 3_200), null, "once");

  const reloaded = new TurnQueue(store, 1000);
  assertEquals(await reloaded.load(), 2);
  assertEquals(reloaded.claimableChats(3_100), ["b", "a"], "the same order from the store");
  assertEquals((await reloaded.claim("w2", "a", 3_300))?.attempt, 2);
  await store.close();
});
