import { assertEquals } from "../../tests/_assert.ts";
import { Logger } from "../log.ts";
import { ChatService } from "./chat_service.ts";
import { parseRelayConfig } from "./config.ts";
import { relayMetrics } from "./metrics.ts";

const DAY_MS = 86_400_000;

/** Every KV key that names `chatId` (chat, messages, state, partial, seq) or its turns. */
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

  const kv = await Deno.openKv(":memory:");
  const svc = new ChatService(kv, config, new Logger("test", "error", () => {}));
  await svc.start(
    relayMetrics({ visitorSockets: () => 0, workerSockets: () => 0, openTurns: () => 0 }),
  );
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
    await svc.flush();
    kv.close();
  }
});
