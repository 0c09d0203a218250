import { assert, assertEquals } from "../../tests/_assert.ts";
import type { ChatStore } from "./store/chat_store.ts";
import { kvStore } from "./store/kv_store.ts";
import { WorkerRegistry } from "./worker_registry.ts";

const REPORT = {
  agentApi: { status: "online" as const, detail: "ok" },
  llm: { status: "online" as const, detail: "ok" },
};

/** `inner` with its `listWorkers()` calls counted, and `shared` as given. */
function counted(inner: ChatStore, shared: boolean) {
  const reads = { count: 0 };
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === "shared") return shared;
      const value = Reflect.get(target, prop);
      if (prop === "listWorkers") {
        return () => {
          reads.count++;
          return target.listWorkers();
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store, reads };
}

Deno.test("WorkerRegistry: on a shared store relay A reports ready a worker heard only by relay B", async () => {
  const kv = kvStore(await Deno.openKv(":memory:"));
  try {
    const { store } = counted(kv, true);
    const onA = new WorkerRegistry(store, 30_000);
    const onB = new WorkerRegistry(store, 30_000);
    await onA.load();
    await onB.load();
    const now = Date.now();
    assertEquals((await onA.currentHealth(false, now)).workerReady, false);

    await onB.report("w-b", REPORT, now + 10);
    await onB.seen("w-b", now + 20);
    // A read it 10 ms ago: not due yet, so A answers from memory.
    assertEquals((await onA.currentHealth(false, now + 30)).workerReady, false);
    const later = await onA.currentHealth(false, now + 2_100);
    assertEquals([later.workerReady, later.workerStatus], [true, REPORT]);
  } finally {
    await kv.close();
  }
});

Deno.test("WorkerRegistry: the newer heartbeat and the newer report win, whichever relay has them", async () => {
  const kv = kvStore(await Deno.openKv(":memory:"));
  try {
    const onA = new WorkerRegistry(kv, 30_000, { refreshMs: 1_000 });
    const onB = new WorkerRegistry(kv, 30_000, { refreshMs: 1_000 });
    const now = Date.now();
    await onB.report("w", REPORT, now); // stored with its report
    const fresher = {
      agentApi: { status: "degraded" as const, detail: "slow" },
      llm: REPORT.llm,
    };
    await onA.report("w", fresher, now + 5_000);
    await onB.refresh(now + 6_000);
    assertEquals((await onB.currentHealth(false, now + 6_000)).workerStatus, fresher);
    // A third relay stores an older heartbeat and report: they do not pull A's back.
    await new WorkerRegistry(kv, 30_000).report("w", REPORT, now + 1_000);
    await onA.refresh(now + 7_000);
    const health = await onA.currentHealth(false, now + 7_000);
    assertEquals(health.workerLastSeenAt, new Date(now + 5_000).toISOString());
    assertEquals(health.workerStatus, fresher);
  } finally {
    await kv.close();
  }
});

Deno.test("WorkerRegistry: at most one store read per interval on a shared store, none on Deno KV", async () => {
  const kv = kvStore(await Deno.openKv(":memory:"));
  try {
    const shared = counted(kv, true);
    const registry = new WorkerRegistry(shared.store, 30_000);
    await registry.load();
    const now = Date.now();
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => registry.currentHealth(false, now + 2_000 + i)),
    );
    assertEquals(shared.reads.count, 2, "the load and one read for 50 requests");
    await registry.currentHealth(false, now + 4_100);
    assertEquals(shared.reads.count, 3);

    const single = counted(kv, false);
    const alone = new WorkerRegistry(single.store, 30_000);
    await alone.load();
    for (let i = 0; i < 5; i++) await alone.currentHealth(false, now + i * 10_000);
    assertEquals(single.reads.count, 1, "only the load");
  } finally {
    await kv.close();
  }
});

Deno.test("WorkerRegistry: a store that fails a read leaves health to memory", async () => {
  const kv = kvStore(await Deno.openKv(":memory:"));
  try {
    let failing = false;
    const store = new Proxy(kv, {
      get(target, prop) {
        if (prop === "shared") return true;
        if (prop === "listWorkers" && failing) return () => Promise.reject(new Error("down"));
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const registry = new WorkerRegistry(store, 30_000);
    await registry.load();
    const now = Date.now();
    await registry.seen("w", now);
    failing = true;
    const health = await registry.currentHealth(false, now + 3_000);
    assert(health.workerReady, "the worker this relay heard is still ready");
  } finally {
    await kv.close();
  }
});
