import { assertEquals } from "../../tests/_assert.ts";
import type { ChainLink, HealthLink, HealthResponse } from "../../lib/protocol.ts";
import { availabilityOf, chainSummary, linkDetail } from "./availability.ts";

const link = (name: ChainLink["name"], status: ChainLink["status"], detail = ""): HealthLink => ({
  id: name,
  label: name,
  name,
  status,
  detail,
  checkedAt: null,
  latencyMs: null,
});
const chain = (worker: ChainLink["status"], llm: ChainLink["status"]) => [
  link("frontend", "online"),
  link("relay", "online"),
  link("worker", worker, worker === "online" ? "Connected" : "No worker has connected yet"),
  link("agent", "online", "Agent API answered"),
  link("llm", llm),
];
const health = (workerReady: boolean, llm: ChainLink["status"]): HealthResponse => ({
  relay: "ok",
  workerReady,
  workerLastSeenAt: null,
  workerStatus: null,
  chain: chain(workerReady ? "online" : "offline", llm).map((l) => ({
    ...l,
    id: l.name,
    label: l.name,
  })),
});

Deno.test("Terra is away when no worker is there or the model is offline", () => {
  assertEquals(availabilityOf(health(true, "online")), "online");
  assertEquals(availabilityOf(health(false, "unknown")), "away");
  assertEquals(availabilityOf(health(true, "offline")), "away");
  assertEquals(availabilityOf(health(true, "degraded")), "online");
  assertEquals(availabilityOf(null), "unknown");
});

Deno.test("the summary and details speak a visitor's words", () => {
  assertEquals(chainSummary(chain("online", "online")).text, "Terra is online");
  assertEquals(chainSummary(chain("offline", "unknown"), "Fern").text, "Fern is offline");
  assertEquals(chainSummary(chain("online", "degraded")).status, "degraded");
  for (const item of chain("offline", "online")) {
    assertEquals(/\b(worker|agent|relay)\b/i.test(linkDetail(item)), false, linkDetail(item));
  }
});
