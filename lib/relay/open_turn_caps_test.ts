import { assertEquals, assertRejects, assertThrows } from "../../tests/_assert.ts";
import { Logger } from "../log.ts";
import { ChatService } from "./chat_service.ts";
import { parseRelayConfig } from "./config.ts";
import { RelayError } from "./errors.ts";
import { relayMetrics } from "./metrics.ts";
import { OpenTurnCaps } from "./open_turn_caps.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (error) {
    return (error as RelayError).code;
  }
}

Deno.test("OpenTurnCaps: reservations count before the turns are stored, per key and in total", () => {
  const stored = new Map<string, number>();
  const caps = new OpenTurnCaps({ perClient: 2, total: 3 }, {
    total: () => [...stored.values()].reduce((a, b) => a + b, 0),
    ofClient: (key) => stored.get(key) ?? 0,
  });
  // Two requests racing for the same key: the third is refused although none is stored yet.
  const a1 = caps.reserve("a");
  caps.reserve("a");
  assertEquals(codeOf(() => caps.reserve("a")), "too_many_open_turns");
  // A released place (the store failed) is free again.
  a1();
  a1();
  caps.reserve("a");
  caps.reserve("b");
  const error = assertThrows(() => caps.reserve("c")) as RelayError;
  assertEquals([error.code, error.status, error.retryAfterSeconds], ["queue_full", 429, 30]);
  assertEquals(error.message.endsWith("."), true, error.message);
});

Deno.test("ChatService: the per-key cap counts the raw IP's key and survives a restart", async () => {
  const kv = await Deno.openKv(":memory:");
  const config = parseRelayConfig({
    DEMO_MODE: "true",
    KV_PATH: ":memory:",
    MAX_OPEN_TURNS_PER_CLIENT: "2",
  });
  const quiet = new Logger("test", "error", () => {});
  const metrics = () =>
    relayMetrics({ visitorSockets: () => 0, workerSockets: () => 0, openTurns: () => 0 });
  const first = new ChatService(kv, config, quiet);
  await first.start(metrics());
  const from = (ip: string) => ({ ip, userAgent: "t" });
  await first.postVisitorMessage("a", "1", from("2001:db8:5:5::1"));
  await first.postVisitorMessage("b", "2", from("2001:db8:5:5::2"));
  await assertRejects(() => first.postVisitorMessage("c", "3", from("2001:db8:5:5::3")), "wait");
  await first.flush();
  const second = new ChatService(kv, config, quiet);
  await second.start(metrics());
  await assertRejects(() => second.postVisitorMessage("d", "4", from("2001:db8:5:5::4")), "wait");
  await second.postVisitorMessage("e", "5", from("2001:db8:5:6::1"));
  // The chat record keeps the raw address (the admin export shows it), not the key.
  assertEquals((await second.store.getChat("a"))?.clientIp, "2001:db8:5:5::1");
  await second.flush();
  kv.close();
});
