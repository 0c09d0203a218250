/**
 * Issue 13, item 1: a socket ack carries the HTTP status and retryability of its code, so
 * a reply refused over the worker socket because the store cannot write (503
 * `store_unavailable`) is retried like the same reply over HTTP, and stored once, instead
 * of being given up (the lease then expired and the answer was generated again). The relay
 * runs in-process on port 0 over a store that refuses its first writes of a reply.
 */
import { Logger } from "../lib/log.ts";
import { AckEvent, ERROR_CODES } from "../lib/protocol.ts";
import type { ChatStore } from "../lib/relay/store/chat_store.ts";
import { parseWorkerConfig } from "../lib/worker/config.ts";
import { RelayClient } from "../lib/worker/relay_client.ts";
import { assert, assertEquals } from "./_assert.ts";
import { chatHistory, postMessage, sleep, visitorToken } from "./_clients.ts";
import { withAppRelay } from "./_relay_in_process.ts";
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
  await withAppRelay({}, async (relay) => {
    const lines: string[] = [];
    const httpCalls: string[] = [];
    const connections: boolean[] = [];
    const client = new RelayClient(
      parseWorkerConfig({
        API_BASE_URL: relay.url,
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
      const token = await visitorToken(relay.url);
      const question = await postMessage(relay.url, token, "c1", "Which moss?");
      assertEquals(question.status, 201);
      const turn = await client.claim("c1");
      assert(turn, "a turn to claim");
      const posted = await client.postReply("c1", {
        content: "Cushion moss.",
        replyTo: question.body.id,
        leaseId: turn.leaseId,
      });
      assertEquals([posted.duplicate, posted.message.replyTo], [false, question.body.id]);
      const retries = lines.filter((l) => l.includes("posting the reply failed; retrying"));
      assertEquals(retries.length, 2, "two refusals, two retries");
      assert(retries.every((l) => l.includes("store_unavailable")), retries.join("\n"));
      assertEquals(httpCalls.filter((c) => c.endsWith("/agent")), [], "all over the socket");
      const terra = (await chatHistory(relay.url, token, "c1")).filter((m) => m.sender === "Terra");
      assertEquals(terra.map((m) => m.content), ["Cushion moss."], "stored once");
    } finally {
      await client.stop();
    }
  }, { wrapStore: (store) => refusingStore(store, 2) });
});
