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
