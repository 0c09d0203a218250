import { assertEquals } from "../../tests/_assert.ts";
import { ChatSeqs } from "./chat_seqs.ts";
import type { ChatStore } from "./store/chat_store.ts";

/** A store whose numbers another relay also takes when `others` says so. */
function counter() {
  const seqs = new Map<string, number>();
  return {
    store: {
      nextSeq: (chatId: string) => {
        const next = (seqs.get(chatId) ?? 0) + 1;
        seqs.set(chatId, next);
        return Promise.resolve(next);
      },
    } as unknown as ChatStore,
    otherRelayTakes: (chatId: string) => seqs.set(chatId, (seqs.get(chatId) ?? 0) + 1),
  };
}

Deno.test("ChatSeqs on a shared store says when another relay numbered the chat in between", async () => {
  const { store, otherRelayTakes } = counter();
  const seqs = new ChatSeqs(store, true);
  assertEquals(await seqs.next("c"), { seq: 1, continuous: false }, "nothing remembered yet");
  assertEquals(await seqs.next("c"), { seq: 2, continuous: true });
  otherRelayTakes("c");
  assertEquals(await seqs.next("c"), { seq: 4, continuous: false });
  // A chunk's one round trip took 5 in Redis itself (the fake's counter moves the same way).
  otherRelayTakes("c");
  seqs.took("c", 5);
  assertEquals(seqs.last("c"), 5);
  assertEquals(await seqs.next("c"), { seq: 6, continuous: true });
});

Deno.test("ChatSeqs for a relay alone always says continuous and remembers nothing", async () => {
  const { store } = counter();
  const seqs = new ChatSeqs(store, false);
  assertEquals(await seqs.next("c"), { seq: 1, continuous: true });
  assertEquals(seqs.last("c"), undefined);
});

Deno.test("ChatSeqs.nextNow() numbers at once only for a relay alone whose store can", () => {
  let now = 7;
  const store = { nextSeqNow: () => now++ } as unknown as ChatStore;
  assertEquals(new ChatSeqs(store, false).nextNow("c"), 7);
  assertEquals(new ChatSeqs(store, true).nextNow("c"), null, "shared: the store must say");
  assertEquals(new ChatSeqs({} as ChatStore, false).nextNow("c"), null, "a store without it");
  assertEquals(now, 8);
});
