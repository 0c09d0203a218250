/**
 * Issue 13, item 1: a socket ack carries the HTTP status and retryability of its code, so
 * a reply refused over the worker socket because the store cannot write (503
 * `store_unavailable`) is retried like the same reply over HTTP, and stored once, instead
 * of being given up (the lease then expired and the answer was generated again). The relay
 * runs in-process on port 0 over a store that refuses its first writes of a reply.
 */
import { Logger } from "../lib/log.ts";
import { AckEvent, ERROR_CODES } from "../lib/protocol.ts";
import { ChatService, chatServiceParts } from "../lib/relay/chat_service.ts";
import { parseRelayConfig } from "../lib/relay/config.ts";
import { relayMetrics } from "../lib/relay/metrics.ts";
import { RateLimiter } from "../lib/relay/rate_limiter.ts";
import { relayApp } from "../lib/relay/relay_app.ts";
import { Auth } from "../lib/relay/auth.ts";
import type { ChatStore } from "../lib/relay/store/chat_store.ts";
import { kvStore } from "../lib/relay/store/kv_store.ts";
import { parseWorkerConfig } from "../lib/worker/config.ts";
import { RelayClient } from "../lib/worker/relay_client.ts";
import { assert, assertEquals } from "./_assert.ts";
import { sleep } from "./_clients.ts";
import { TEST_SECRETS } from "./_relay_process.ts";

/** What a full disk makes Deno KV's SQLite say (`errors.ts` maps it to 503). */
const DISK_FULL = "database or disk is full";

/** `inner`, except that its first `refusals` closes of a turn fail as on a full disk. */
function refusingStore(inner: ChatStore, refusals: number): ChatStore {
  return new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      if (prop !== "closeTurn") return value.bind(target);
      return (...args: Parameters<ChatStore["closeTurn"]>) => {
        if (refusals-- > 0) return Promise.reject(new Error(DISK_FULL));
        return target.closeTurn(...args);
      };
    },
  });
}

/** Polls `predicate` until it holds (bounded). */
async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(20);
  }
}

Deno.test("the ack schema carries a refusal's status and retryability; store_unavailable is a retryable 503", () => {
  const ack = AckEvent.parse({
    type: "ack",
    requestId: "r1",
    ok: false,
    code: "store_unavailable",
    error: "x",
    status: 503,
    retryable: true,
  });
  assertEquals([ack.status, ack.retryable], [503, true]);
  assertEquals(ERROR_CODES.store_unavailable, {
    ...ERROR_CODES.store_unavailable,
    status: 503,
    retryable: true,
  });
});

Deno.test("a reply refused over the socket with store_unavailable is retried there and stored once", async () => {
  const config = parseRelayConfig({
    KV_PATH: ":memory:",
    SERVICE_TOKEN: TEST_SECRETS.SERVICE_TOKEN,
    CHAT_PASSWORD: TEST_SECRETS.CHAT_PASSWORD,
    WEB_DIR: "",
  });
  const kv = await Deno.openKv(":memory:");
  const store = refusingStore(kvStore(kv), 2);
  const log = new Logger("relay", "error", () => {});
  const metrics = relayMetrics({
    visitorSockets: () => 0,
    workerSockets: () => 0,
    openTurns: () => 0,
  });
  const parts = chatServiceParts(store, config, log, metrics);
  const service = new ChatService(parts);
  await service.start();
  const app = relayApp({
    config,
    log,
    service,
    visitors: parts.visitors,
    workers: parts.workers,
    registry: parts.registry,
    metrics,
    auth: new Auth(config),
    ipLimiter: new RateLimiter(config.rateLimitWindowMs, config.rateLimitMaxPerIp),
    chatLimiter: new RateLimiter(config.rateLimitWindowMs, config.rateLimitMaxPerChat),
    frontendServed: false,
  });
  const shutdown = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: shutdown.signal, onListen: () => {} },
    (req, info) => app.fetch(req, { remoteAddr: info.remoteAddr }),
  );

  const lines: string[] = [];
  const httpCalls: string[] = [];
  const connections: boolean[] = [];
  const client = new RelayClient(
    parseWorkerConfig({
      API_BASE_URL: `http://127.0.0.1:${server.addr.port}`,
      SERVICE_TOKEN: TEST_SECRETS.SERVICE_TOKEN,
      AGENT_API_URL: "http://127.0.0.1:9/v1",
      WORKER_ID: "ack-test",
    }),
    new Logger("relay-client", "debug", (line) => lines.push(line)),
    {
      fetch: (input, init) => {
        httpCalls.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
      random: () => 0, // no backoff waits
    },
  );
  client.onConnection((connected) => connections.push(connected));
  try {
    client.start();
    await waitUntil(() => connections.includes(true), "the worker socket");
    const question = await service.postVisitorMessage("c1", "Which moss?", {
      ip: "192.0.2.7",
      userAgent: "t",
    });
    const turn = await client.claim("c1");
    assert(turn, "a turn to claim");
    const posted = await client.postReply("c1", {
      content: "Cushion moss.",
      replyTo: question.id,
      leaseId: turn.leaseId,
    });
    assertEquals([posted.duplicate, posted.message.replyTo], [false, question.id]);
    const retries = lines.filter((l) => l.includes("posting the reply failed; retrying"));
    assertEquals(retries.length, 2, "two refusals, two retries");
    assert(retries.every((l) => l.includes("store_unavailable")), retries.join("\n"));
    assertEquals(httpCalls.filter((c) => c.endsWith("/agent")), [], "all over the socket");
    const terra = (await service.listMessages("c1")).filter((m) => m.sender === "Terra");
    assertEquals(terra.map((m) => m.content), ["Cushion moss."], "stored once");
  } finally {
    await client.stop();
    shutdown.abort();
    await server.finished;
    await service.flush();
    await store.close();
  }
});
