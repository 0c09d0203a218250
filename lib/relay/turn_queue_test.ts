import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { TurnQueue } from "./turn_queue.ts";

async function queueWith(chats: string[], leaseMs = 1000) {
  const kv = await Deno.openKv(":memory:");
  const queue = new TurnQueue(kv, leaseMs);
  let t = 1_000;
  for (const chatId of chats) {
    const turn = TurnQueue.newTurn(chatId, `m-${chatId}-${t}`, t++);
    await queue.enqueue(turn, kv.atomic());
  }
  return { kv, queue };
}

Deno.test("claim() hands out the oldest turn and lists it no more as claimable", async () => {
  const { kv, queue } = await queueWith(["a", "b"]);
  assertEquals(queue.claimableChats(2_000), ["a", "b"]);
  const turn = await queue.claim("w1", undefined, 2_000);
  assertEquals(turn?.chatId, "a");
  assertEquals(turn?.attempt, 1);
  assertEquals(queue.claimableChats(2_000), ["b"]);
  kv.close();
});

Deno.test("claim() hands an expired lease to the next worker, and the first loses it", async () => {
  const { kv, queue } = await queueWith(["a"], 1000);
  const first = (await queue.claim("w1", undefined, 2_000))!;
  assertEquals(await queue.claim("w2", undefined, 2_500), null);
  const second = (await queue.claim("w2", undefined, 3_001))!;
  assertEquals(second.id, first.id);
  assertEquals(second.attempt, 2);
  assert(second.leaseId !== first.leaseId);
  await assertRejects(() => queue.renew(first.id, first.leaseId!, 3_100), "no longer yours");
  kv.close();
});

Deno.test("renew() keeps a lease alive past its first expiry", async () => {
  const { kv, queue } = await queueWith(["a"], 1000);
  const turn = (await queue.claim("w1", undefined, 2_000))!;
  await queue.renew(turn.id, turn.leaseId!, 2_900);
  assertEquals(await queue.claim("w2", undefined, 3_500), null);
  kv.close();
});

Deno.test("a chat's second turn waits until its first is closed", async () => {
  const { kv, queue } = await queueWith(["a", "a"]);
  const first = (await queue.claim("w1", undefined, 2_000))!;
  assertEquals(await queue.claim("w2", undefined, 2_000), null);
  await queue.close(first.id, "done", 7, kv.atomic());
  const second = await queue.claim("w2", undefined, 2_000);
  assert(second && second.id !== first.id);
  kv.close();
});

Deno.test("close() is idempotent: the second close of a turn returns null", async () => {
  const { kv, queue } = await queueWith(["a"]);
  const turn = (await queue.claim("w1", undefined, 2_000))!;
  assert(await queue.close(turn.id, "done", 3, kv.atomic()));
  assertEquals(await queue.close(turn.id, "done", 4, kv.atomic()), null);
  assertEquals((await queue.get(turn.id))?.replySeq, 3);
  kv.close();
});

Deno.test("concurrent claims never hand the same turn to two workers", async () => {
  const { kv, queue } = await queueWith(["a", "b", "c"]);
  const claims = await Promise.all(
    Array.from({ length: 6 }, (_, i) => queue.claim(`w${i}`, undefined, 2_000)),
  );
  const ids = claims.filter((t) => t !== null).map((t) => t!.id);
  assertEquals(ids.length, 3);
  assertEquals(new Set(ids).size, 3);
  kv.close();
});

Deno.test("load() restores open turns with their leases after a restart", async () => {
  const path = await Deno.makeTempFile({ suffix: ".kv" });
  try {
    let kv = await Deno.openKv(path);
    let queue = new TurnQueue(kv, 1000);
    await queue.enqueue(TurnQueue.newTurn("a", "m1", 1), kv.atomic());
    await queue.enqueue(TurnQueue.newTurn("b", "m2", 2), kv.atomic());
    const leased = (await queue.claim("w1", undefined, 2_000))!;
    kv.close();

    kv = await Deno.openKv(path);
    queue = new TurnQueue(kv, 1000);
    assertEquals(await queue.load(), 2);
    assertEquals(queue.claimableChats(2_500), ["b"]);
    assertEquals(queue.currentTurn("a")?.leaseId, leased.leaseId);
    kv.close();
  } finally {
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("positions() counts waiting chats ahead, skipping chats being answered", async () => {
  const { kv, queue } = await queueWith(["a", "b", "c"]);
  assertEquals([...queue.positions(2_000)], [["a", 0], ["b", 1], ["c", 2]]);
  await queue.claim("w1", undefined, 2_000);
  assertEquals([...queue.positions(2_000)], [["b", 0], ["c", 1]]);
  kv.close();
});

Deno.test("takeExpired() reports each expired lease once", async () => {
  const { kv, queue } = await queueWith(["a"], 1000);
  await queue.claim("w1", undefined, 2_000);
  assertEquals(queue.takeExpired(2_500).length, 0);
  assertEquals(queue.takeExpired(3_100).length, 1);
  assertEquals(queue.takeExpired(3_200).length, 0);
  kv.close();
});

Deno.test("reopen() puts a failed turn back at the end of the queue, also after a reload", async () => {
  const { kv, queue } = await queueWith(["a", "b"]);
  const turn = (await queue.claim("w1", "a", 2_000))!;
  assertEquals(await queue.reopen(turn.id, kv.atomic(), 2_100), null, "only a failed turn");
  const failure = { code: "model_unavailable", error: "Down.", failedAt: "t" };
  const failed = await queue.close(turn.id, "failed", null, kv.atomic(), failure);
  assertEquals([failed?.status, failed?.failure], ["failed", failure]);
  assertEquals(queue.claimableChats(2_200), ["b"]);

  const reopened = (await queue.reopen(turn.id, kv.atomic(), 3_000))!;
  assertEquals([reopened.status, reopened.failure, reopened.createdAtMs], [
    "pending",
    undefined,
    3_000,
  ]);
  assertEquals(queue.claimableChats(3_100), ["b", "a"], "behind the chats that waited");
  assertEquals(await queue.reopen(turn.id, kv.atomic(), 3_200), null, "once");

  const reloaded = new TurnQueue(kv, 1000);
  assertEquals(await reloaded.load(), 2);
  assertEquals(reloaded.claimableChats(3_100), ["b", "a"], "the same order from KV");
  assertEquals((await reloaded.claim("w2", "a", 3_300))?.attempt, 2);
  kv.close();
});
