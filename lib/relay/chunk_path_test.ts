import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/_assert.ts";
import { Logger } from "../log.ts";
import type { AssistantChunkEvent, ChatEvent } from "../protocol.ts";
import { ChatLanes } from "./chat_lanes.ts";
import { ChatSeqs } from "./chat_seqs.ts";
import { ChunkPath } from "./chunk_path.ts";
import { parseRelayConfig } from "./config.ts";
import type { Fanout } from "./fanout.ts";
import { PartialAnswers } from "./partial_answers.ts";
import type { ChatStore } from "./store/chat_store.ts";
import { kvStore } from "./store/kv_store.ts";
import { TurnQueue } from "./turn_queue.ts";
import { testService } from "./_test_service.ts";

const client = { ip: "127.0.0.1", userAgent: "test" };
const config = parseRelayConfig({ DEMO_MODE: "true", KV_PATH: ":memory:" });

/**
 * A KV store whose named methods wait for `release()` once `hold()` was called for them, and
 * say when they were reached (`reached`): a write caught while it is under way.
 */
function heldStore(inner: ChatStore) {
  const holds = new Map<string, { reached: () => void; gate: Promise<void> }>();
  const store = new Proxy(inner, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const hold = typeof name === "string" ? holds.get(name) : undefined;
        if (!hold) return value.apply(target, args);
        holds.delete(name as string);
        hold.reached();
        return hold.gate.then(() => value.apply(target, args));
      };
    },
  });
  const hold = (name: keyof ChatStore) => {
    const reached = Promise.withResolvers<void>();
    const gate = Promise.withResolvers<void>();
    holds.set(name, { reached: reached.resolve, gate: gate.promise });
    return { reached: reached.promise, release: gate.resolve };
  };
  return { store, hold };
}

/** A started service over `kv` whose store can be held, and what a visitor socket of `chatId` got. */
async function service(kv: Deno.Kv, chatId = "c1") {
  const { store, hold } = heldStore(kvStore(kv));
  const { service: svc, parts } = await testService(config, undefined, store);
  const frames: ChatEvent[] = [];
  const socket = {
    readyState: WebSocket.OPEN,
    bufferedAmount: 0,
    send: (data: string) => frames.push(JSON.parse(data)),
    close: () => {},
  } as unknown as WebSocket;
  parts.visitors.goLive(parts.visitors.attach(chatId, socket, client.ip), 0);
  return { svc, hold, frames };
}

/** What a socket got after `from`, as [type, content] pairs, checking the numbers rise. */
function after(frames: ChatEvent[], from: number): [string, string][] {
  const seqs = frames.map((e) => e.seq);
  assertEquals(seqs, [...new Set(seqs)].sort((a, b) => a - b), "each number once, in order");
  return frames.filter((e) => e.seq > from).map((e) => [e.type, "content" in e ? e.content : ""]);
}

Deno.test("postChunkNow() takes a chunk at once on an idle lane, numbered after the chat's last event", async () => {
  const kv = await Deno.openKv(":memory:");
  const { svc, frames } = await service(kv);
  await svc.postVisitorMessage("c1", "Hi?", client);
  const turn = (await svc.claim("w1"))!;
  const last = frames.at(-1)!.seq;
  const event = svc.postChunkNow("c1", { content: "Hel", turnId: turn.id, leaseId: turn.leaseId });
  assertEquals(event?.seq, last + 1);
  assertEquals(frames.at(-1), event, "delivered before it returned");
  assertEquals((await svc.postChunk("c1", { content: "lo", turnId: turn.id }))?.offset, 3);
  await svc.flush();
  kv.close();
});

Deno.test("a chunk that arrives while a visitor message is stored in its chat is numbered and sent after it", async () => {
  const kv = await Deno.openKv(":memory:");
  const { svc, hold, frames } = await service(kv);
  await svc.postVisitorMessage("c1", "Hi?", client);
  const turn = (await svc.claim("w1"))!;
  const first = svc.postChunkNow("c1", { content: "a", turnId: turn.id })!;
  const held = hold("putVisitorMessage");
  const message = svc.postVisitorMessage("c1", "And?", client);
  await held.reached;
  // The message holds a number and its lane: the chunk must not pass it.
  assertEquals(svc.postChunkNow("c1", { content: "b", turnId: turn.id }), undefined);
  const chunk = svc.postChunk("c1", { content: "b", turnId: turn.id });
  held.release();
  const [stored, sent] = await Promise.all([message, chunk]);
  assert(stored.seq < sent!.seq, "the chunk is numbered after the message");
  await svc.flush();
  assertEquals(
    after(frames, first.seq - 1).filter(([type]) => type !== "workerState"),
    [["assistantChunk", "a"], ["message", "And?"], ["assistantChunk", "b"]],
  );
  kv.close();
});

Deno.test("a chunk behind a worker state still being stored waits for it", async () => {
  const kv = await Deno.openKv(":memory:");
  const { svc, hold, frames } = await service(kv);
  await svc.postVisitorMessage("c1", "Hi?", client);
  const turn = (await svc.claim("w1"))!;
  const from = frames.at(-1)!.seq;
  const held = hold("setWorkerState");
  const state = svc.setWorkerState("c1", "processing", "Searching");
  await held.reached;
  assertEquals(svc.postChunkNow("c1", { content: "a", turnId: turn.id }), undefined);
  const chunk = svc.postChunk("c1", { content: "a", turnId: turn.id });
  held.release();
  const [event, sent] = await Promise.all([state, chunk]);
  assert(event.seq < sent!.seq);
  assertEquals(after(frames, from), [["workerState", ""], ["assistantChunk", "a"]]);
  await svc.flush();
  kv.close();
});

Deno.test("after a restart a chunk that reads the store holds back the chunks behind it", async () => {
  const kv = await Deno.openKv(":memory:");
  const before = await service(kv);
  await before.svc.postVisitorMessage("c1", "Hi?", client);
  const turn = (await before.svc.claim("w1"))!;
  await before.svc.postChunk("c1", { content: "Hel", turnId: turn.id });
  await before.svc.flush();
  // A new relay on the same store: the partial answer and the numbers are not in memory.
  const { svc, hold, frames } = await service(kv);
  const held = hold("getPartial");
  assertEquals(svc.postChunkNow("c1", { content: "lo", turnId: turn.id }), undefined);
  const first = svc.postChunk("c1", { content: "lo", turnId: turn.id });
  await held.reached;
  assertEquals(svc.postChunkNow("c1", { content: "!", turnId: turn.id }), undefined);
  const second = svc.postChunk("c1", { content: "!", turnId: turn.id });
  held.release();
  const [a, b] = await Promise.all([first, second]);
  assertEquals([a!.offset, b!.offset, b!.seq - a!.seq], [3, 5, 1]);
  assertEquals(after(frames, 0), [["assistantChunk", "lo"], ["assistantChunk", "!"]]);
  // Now everything is in memory: the next chunk goes at once.
  assertEquals(svc.postChunkNow("c1", { content: "?", turnId: turn.id })?.offset, 6);
  await svc.flush();
  kv.close();
});

Deno.test("postChunkNow() refuses with the codes postChunk() rejects with", async () => {
  const kv = await Deno.openKv(":memory:");
  const { svc } = await service(kv);
  await svc.postVisitorMessage("c1", "Hi?", client);
  await svc.postVisitorMessage("c2", "Hi?", client);
  const turn = (await svc.claim("w1", "c1"))!;
  const other = (await svc.claim("w1", "c2"))!;
  svc.postChunkNow("c1", { content: "abc", turnId: turn.id });
  const cases = [
    [{ content: "x", offset: 9, turnId: turn.id }, "chunk_gap"],
    [{ content: "x", turnId: turn.id, leaseId: "someone-else" }, "lease_lost"],
    [{ content: "x", turnId: other.id }, "unknown_turn"],
    [{ content: "x".repeat(512 * 1024), turnId: turn.id }, "answer_too_long"],
  ] as const;
  for (const [chunk, code] of cases) {
    const now = assertThrows(() => svc.postChunkNow("c1", chunk)) as Error & { code: string };
    const later = await assertRejects(() => svc.postChunk("c1", chunk)) as Error & {
      code: string;
    };
    assertEquals([now.code, later.code], [code, code]);
  }
  // A turn that is not open here is for the store to judge: closed (ignored) or unknown.
  assertEquals(svc.postChunkNow("c1", { content: "x", turnId: "no-such-turn" }), undefined);
  await assertRejects(() => svc.postChunk("c1", { content: "x", turnId: "no-such-turn" }));
  await svc.postReply("c1", { content: "Hello", replyTo: turn.id });
  assertEquals(svc.postChunkNow("c1", { content: "x", turnId: turn.id }), undefined);
  assertEquals(await svc.postChunk("c1", { content: "x", turnId: turn.id }), null);
  await svc.flush();
  kv.close();
});

Deno.test("postNow() never runs on several relays: the lock and Redis path stay as they are", async () => {
  const kv = await Deno.openKv(":memory:");
  const store = kvStore(kv);
  const log = new Logger("test", "error", () => {});
  const queue = new TurnQueue(store, 60_000);
  await queue.enqueue(
    TurnQueue.newTurn("c1", "m1", Date.now()),
    { id: "c1", createdAt: "", lastActivityAt: "", clientIp: "", userAgent: "" },
    { id: "m1", chatId: "c1", sender: "Visitor", content: "Hi?", createdAt: "", seq: 1 },
  );
  await store.nextSeq("c1");
  const sent: AssistantChunkEvent[] = [];
  for (const shared of [true, false]) {
    const fanout = {
      shared,
      chatNow: (e: AssistantChunkEvent) => sent.push(e),
    } as unknown as Fanout;
    const lock = shared ? null : { acquire: () => Promise.resolve(() => Promise.resolve()) };
    const path = new ChunkPath({
      lanes: new ChatLanes(),
      lock: lock as never,
      queue,
      partials: new PartialAnswers(store, log, fanout),
      fanout,
      seqs: new ChatSeqs(store, shared),
    });
    assertEquals(path.postNow("c1", { content: "a", turnId: "m1" }), undefined);
  }
  assertEquals(sent, []);
  kv.close();
});
