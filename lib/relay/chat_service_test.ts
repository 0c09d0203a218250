import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { parseRelayConfig } from "./config.ts";
import { queueDetail } from "./queue_announcer.ts";
import { testService } from "./_test_service.ts";

async function service(env: Record<string, string> = {}) {
  const config = parseRelayConfig({ DEMO_MODE: "true", KV_PATH: ":memory:", ...env });
  const started = await testService(config);
  return { started, svc: started.service };
}
const client = { ip: "127.0.0.1", userAgent: "test" };

Deno.test("replay() gives a late visitor the messages, state and a snapshot of the answer", async () => {
  const { started, svc } = await service();
  const question = await svc.postVisitorMessage("c1", "Hi?", client);
  const turn = (await svc.claim("w1"))!;
  await svc.postChunk("c1", { content: "Hel", turnId: turn.id });
  await svc.postChunk("c1", { content: "lo", turnId: turn.id });
  await svc.postChunk("c1", { content: "thinking", kind: "reasoning", turnId: turn.id });
  const events = await svc.replay("c1", 0, (e) => e);
  assertEquals(events[0]!.type, "message");
  assertEquals(events[0]!.seq, question.seq);
  const snapshot = events.filter((e) => e.type === "assistantChunk");
  assertEquals(snapshot.map((e) => [e.kind, e.content, e.offset]), [["reasoning", "thinking", 0], [
    "answer",
    "Hello",
    0,
  ]]);
  const seqs = events.map((e) => e.seq);
  assertEquals(seqs, [...seqs].sort((a, b) => a - b));
  // Nothing newer than the last event: nothing to replay.
  assertEquals(await svc.replay("c1", Math.max(...seqs), (e) => e.length), 0);
  await started.close();
});

Deno.test("a chunk that leaves a gap is refused; a snapshot from offset 0 replaces the text", async () => {
  const { started, svc } = await service();
  await svc.postVisitorMessage("c1", "Hi?", client);
  const turn = (await svc.claim("w1"))!;
  await svc.postChunk("c1", { content: "abc", turnId: turn.id });
  await assertRejects(
    () => svc.postChunk("c1", { content: "x", offset: 9, turnId: turn.id }),
    "resend",
  );
  await svc.postChunk("c1", { content: "abcdef", offset: 0, turnId: turn.id });
  const events = await svc.replay("c1", 0, (e) => e);
  assertEquals(events.find((e) => e.type === "assistantChunk")?.content, "abcdef");
  await started.close();
});

Deno.test("a legacy reply without replyTo answers the chat's open turn exactly once", async () => {
  const { started, svc } = await service();
  await svc.postVisitorMessage("c1", "Hi?", client);
  const first = await svc.postReply("c1", { content: "Hello" });
  assertEquals(first.duplicate, false);
  assertEquals(svc.openChats(), []);
  const messages = await svc.listMessages("c1");
  assertEquals(messages.map((m) => [m.sender, m.replyTo ?? null]), [["Visitor", null], [
    "Terra",
    messages[0]!.id,
  ]]);
  await started.close();
});

Deno.test("cancel() drops a waiting turn so no worker ever answers it", async () => {
  const { started, svc } = await service();
  await svc.postVisitorMessage("c1", "Hi?", client);
  assertEquals(await svc.cancel("c1"), { cancelled: true });
  assertEquals(svc.openChats(), []);
  assertEquals(await svc.claim("w1"), null);
  assertEquals((await svc.getWorkerState("c1")).state, "idle");
  assertEquals(await svc.cancel("c1"), { cancelled: false });
  await started.close();
});

Deno.test("a stopped turn whose worker vanished keeps its partial answer as a stopped reply", async () => {
  const { started, svc } = await service({ TURN_LEASE_SECONDS: "1" });
  await svc.postVisitorMessage("c1", "Hi?", client);
  const turn = (await svc.claim("w1"))!;
  await svc.postChunk("c1", { content: "Half an ans", turnId: turn.id });
  await svc.cancel("c1");
  await svc.expireLeases(Date.now() + 2_000);
  const reply = (await svc.listMessages("c1")).at(-1)!;
  assertEquals([reply.sender, reply.content, reply.stopped], ["Terra", "Half an ans", true]);
  await started.close();
});

Deno.test("sweepRetention() deletes idle chats with their messages and keeps active ones", async () => {
  const { started, svc } = await service({ CHAT_RETENTION_DAYS: "1" });
  await svc.postVisitorMessage("old", "Hi?", client);
  await svc.postReply("old", { content: "Hello" });
  await svc.postVisitorMessage("waiting", "Still there?", client);
  assertEquals(await svc.sweepRetention(Date.now() + 2 * 86_400_000), 1);
  assertEquals(await svc.listMessages("old"), []);
  assert(await svc.getChat("waiting"), "a chat with an open turn is kept");
  await started.close();
});

Deno.test("queueDetail() says the place in line in plain words", () => {
  assertEquals(queueDetail(0), "You're next in line");
  assertEquals(queueDetail(1), "1 chat ahead of you");
  assertEquals(queueDetail(2), "2 chats ahead of you");
});

Deno.test("a stopped turn that its worker releases is finished as stopped, not offered again", async () => {
  const { started, svc } = await service();
  await svc.postVisitorMessage("c1", "Hi?", client);
  const turn = (await svc.claim("w1"))!;
  await svc.postChunk("c1", { content: "So far", turnId: turn.id });
  await svc.cancel("c1");
  await svc.release(turn.id, turn.leaseId);
  assertEquals(svc.openChats(), []);
  assertEquals(await svc.claim("w2"), null);
  const reply = (await svc.listMessages("c1")).at(-1)!;
  assertEquals([reply.content, reply.stopped], ["So far", true]);
  await started.close();
});
