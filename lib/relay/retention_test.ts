import { assertEquals } from "../../tests/_assert.ts";
import { parseRelayConfig } from "./config.ts";
import { testService } from "./_test_service.ts";

const DAY_MS = 86_400_000;

/** Every KV key (the engine's, read beside it) that names `chatId` (chat, messages, state, partial, seq) or its turns. */
async function keysOf(kv: Deno.Kv, chatId: string, turnIds: string[]): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of kv.list({ prefix: [] })) {
    if (entry.key.includes(chatId) || turnIds.some((id) => entry.key.includes(id))) {
      out.push(entry.key.join("/"));
    }
  }
  return out;
}

Deno.test("retention is on by default: a chat idle for 31 days is deleted with all its keys, one idle for 29 is kept", async () => {
  const config = parseRelayConfig({ DEMO_MODE: "true", KV_PATH: ":memory:" });
  assertEquals(config.chatRetentionDays, 30);
  assertEquals(
    parseRelayConfig({ DEMO_MODE: "true", CHAT_RETENTION_DAYS: "0" }).chatRetentionDays,
    0,
  );

  // A file, so the keys left behind can be read by a second handle on the same store.
  const dir = await Deno.makeTempDir({ prefix: "retention-" });
  const started = await testService(config, `${dir}/relay.kv`);
  const svc = started.service;
  const kv = await Deno.openKv(`${dir}/relay.kv`);
  try {
    const question = await svc.postVisitorMessage("idle", "Hi?", {
      ip: "192.0.2.1",
      userAgent: "t",
    });
    await svc.postReply("idle", { content: "Hello", replyTo: question.id });
    await svc.flush();
    const now = Date.now();
    assertEquals(await svc.sweepRetention(now + 29 * DAY_MS), 0);
    assertEquals((await keysOf(kv, "idle", [question.id])).length > 0, true);
    assertEquals(await svc.sweepRetention(now + 31 * DAY_MS), 1);
    assertEquals(await keysOf(kv, "idle", [question.id]), []);
  } finally {
    kv.close();
    await started.close();
    await Deno.remove(dir, { recursive: true });
  }
});
