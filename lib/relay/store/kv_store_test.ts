import { assert, assertEquals } from "../../../tests/_assert.ts";
import { kvStore } from "./kv_store.ts";
import { runStoreConformance } from "./store_conformance.ts";

// In memory: a reopen is a new engine instance over the same database (its in-memory
// sequence blocks start over), the database itself lives until the end of the test.
runStoreConformance("kv_store (:memory:)", async () => {
  const kv = await Deno.openKv(":memory:");
  return {
    store: kvStore(kv),
    reopen: () => Promise.resolve(kvStore(kv)),
    dispose: () => Promise.resolve(kv.close()),
  };
});

// On a file: a reopen closes the database and opens the file again, as a relay restart does.
runStoreConformance("kv_store (file)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kv-store-" });
  const path = `${dir}/relay.kv`;
  let store = kvStore(await Deno.openKv(path));
  return {
    store,
    reopen: async () => {
      await store.close();
      store = kvStore(await Deno.openKv(path));
      return store;
    },
    dispose: async () => {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

Deno.test("nextSeqNow() answers only from a reserved block, and never repeats a number", async () => {
  const kv = await Deno.openKv(":memory:");
  const store = kvStore(kv);
  assertEquals(store.nextSeqNow!("c"), null, "the chat's block is not loaded yet");
  const first = await store.nextSeq("c");
  assertEquals(store.nextSeqNow!("c"), first + 1);
  const taken = [first, first + 1];
  let now;
  while ((now = store.nextSeqNow!("c")) !== null) taken.push(now);
  // The block is used up: the next number needs a write, and none is handed out meanwhile.
  const next = store.nextSeq("c");
  assertEquals(store.nextSeqNow!("c"), null);
  taken.push(await next, store.nextSeqNow!("c")!);
  assertEquals(taken, taken.map((_, i) => first + i));
  // A new engine on the same database starts above every number handed out.
  assert((await kvStore(kv).nextSeq("c")) > taken.at(-1)!);
  kv.close();
});
