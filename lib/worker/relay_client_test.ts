/**
 * `RelayClient` against a real relay process: the socket path, the HTTP path while the
 * socket is down, idempotent replies, lost leases, HMAC signing, and reconnecting after the
 * relay was killed and restarted.
 */
import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import {
  applyChunks,
  type Json,
  postMessage,
  RecordingSocket,
  request,
  sleep,
  tokenProtocols,
  visitorToken,
} from "../../tests/_clients.ts";
import {
  type RelayProcess,
  startRelay,
  TEST_SECRETS,
  withRelay,
} from "../../tests/_relay_process.ts";
import { Logger } from "../log.ts";
import { Backoff, backoffDelay } from "./backoff.ts";
import { parseWorkerConfig, type WorkerConfig } from "./config.ts";
import { RelayClient, type RelayClientOptions, RelayRequestError } from "./relay_client.ts";

const HMAC_SECRET = "hmac-0123456789abcdef0123456789abcdef";
const QUESTION = "Which mosses grow in the terrarium?";
const ANSWER = "Cushion moss and sheet moss.";

function workerConfig(relay: RelayProcess, env: Record<string, string> = {}): WorkerConfig {
  return parseWorkerConfig({
    API_BASE_URL: relay.url,
    SERVICE_TOKEN: TEST_SECRETS.SERVICE_TOKEN,
    AGENT_API_URL: "http://127.0.0.1:9/v1",
    WORKER_ID: "client-test",
    ...env,
  });
}

/** A client whose log lines, HTTP requests and events are recorded. */
interface Harness {
  client: RelayClient;
  lines: string[];
  httpCalls: string[];
  activity: string[];
  cancels: string[][];
  connections: boolean[];
  randomCalls: () => number;
}

function harness(config: WorkerConfig, options: RelayClientOptions = {}): Harness {
  const lines: string[] = [];
  const httpCalls: string[] = [];
  let randomCalls = 0;
  const client = new RelayClient(
    config,
    new Logger("relay-client", "debug", (line) => lines.push(line)),
    {
      fetch: (input, init) => {
        httpCalls.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
      // Short reconnect waits keep the reconnect test quick; the jitter stays in play.
      random: () => {
        randomCalls++;
        return 0.25;
      },
      ...options,
    },
  );
  const h: Harness = {
    client,
    lines,
    httpCalls,
    activity: [],
    cancels: [],
    connections: [],
    randomCalls: () => randomCalls,
  };
  client.onActivity((chatId) => h.activity.push(chatId));
  client.onCancel((chatId, turnId) => h.cancels.push([chatId, turnId]));
  client.onConnection((connected) => h.connections.push(connected));
  return h;
}

/** Polls `predicate` until it holds (bounded). */
async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * A visitor socket that has seen `ready`. (Not `visitorSocket()` from tests/_clients.ts:
 * its `waitFor` leaves a cleanup timer behind, which the op sanitizer reports.)
 */
async function openVisitor(relay: RelayProcess, chatId: string, token: string) {
  const socket = new RecordingSocket(
    `${relay.url.replace("http", "ws")}/api/chat?chatId=${chatId}`,
    undefined,
    tokenProtocols(token),
  );
  await socket.opened;
  await waitUntil(() => socket.events.some((e: Json) => e.type === "ready"), "ready");
  return socket;
}

async function rejection(fn: () => Promise<unknown>): Promise<RelayRequestError> {
  const error = await assertRejects(fn);
  assert(error instanceof RelayRequestError, `expected a RelayRequestError, got ${error}`);
  return error;
}

/** No credential and no message text may reach the worker's log. */
function assertCleanLog(lines: string[]): void {
  for (const line of lines) {
    for (const secret of [TEST_SECRETS.SERVICE_TOKEN, HMAC_SECRET, QUESTION, ANSWER]) {
      assert(!line.includes(secret), `the log leaks "${secret}": ${line}`);
    }
  }
}

const terraMessages = (socket: RecordingSocket) =>
  socket.events.filter((e: Json) => e.type === "message" && e.sender === "Terra");

/**
 * Runs a whole turn through `client`: claim, release, a renewal of the released lease
 * (refused), claim again, renew, state, two chunks, the reply and its repeat.
 */
async function answerOneTurn(h: Harness, relay: RelayProcess, chatId: string): Promise<void> {
  const token = await visitorToken(relay.url);
  const visitor = await openVisitor(relay, chatId, token);
  try {
    const question = await postMessage(relay.url, token, chatId, QUESTION);
    assertEquals(question.status, 201);

    const first = await h.client.claim(chatId);
    assert(first, "a turn to claim");
    assertEquals([first.chatId, first.messageId, first.attempt], [chatId, question.body.id, 1]);
    await h.client.release(first.id, first.leaseId);
    const lost = await rejection(() => h.client.renew(first.id, first.leaseId));
    assertEquals([lost.status, lost.code], [409, "lease_lost"]);

    const turn = await h.client.claim(chatId);
    assert(turn, "the released turn, offered again");
    assertEquals([turn.id, turn.attempt], [first.id, 2]);
    const lease = await h.client.renew(turn.id, turn.leaseId);
    assertEquals(lease.cancelRequested, false);
    assert(Date.parse(lease.leaseExpiresAt) > 0);

    await h.client.setState(chatId, "processing", "Looking through the moss");
    const lease1 = { turnId: turn.id, leaseId: turn.leaseId };
    await h.client.sendChunk(chatId, { content: ANSWER.slice(0, 12), offset: 0, ...lease1 });
    await h.client.sendChunk(chatId, { content: ANSWER.slice(12), offset: 12, ...lease1 });
    await waitUntil(() => applyChunks(visitor.events) === ANSWER, "both chunks");
    await waitUntil(
      () =>
        visitor.events.some((e: Json) =>
          e.type === "workerState" && e.detail === "Looking through the moss"
        ),
      "the processing state",
    );

    const reply = { content: ANSWER, replyTo: question.body.id, leaseId: turn.leaseId };
    const posted = await h.client.postReply(chatId, reply);
    assertEquals(
      [posted.duplicate, posted.message.sender, posted.message.replyTo, posted.message.content],
      [false, "Terra", question.body.id, ANSWER],
    );
    const repeated = await h.client.postReply(chatId, reply);
    assertEquals([repeated.duplicate, repeated.message.id], [true, posted.message.id]);
    await waitUntil(() => terraMessages(visitor).length > 0, "the reply");
    assertEquals(terraMessages(visitor).length, 1, "the repeated reply is not fanned out again");
  } finally {
    await visitor.close();
  }
}

Deno.test("backoffDelay() grows from 500 ms to a 30 s cap, with full jitter", () => {
  const top = () => 0.999_999;
  assertEquals(
    [1, 2, 3, 6, 7, 8, 1000].map((attempt) => backoffDelay(attempt, { random: top })),
    [499, 999, 1999, 15999, 29999, 29999, 29999],
  );
  assertEquals(backoffDelay(5, { random: () => 0 }), 0);
  assertEquals(backoffDelay(2, { random: () => 0.5 }), 500);
});

Deno.test("Backoff counts attempts and starts over after reset()", () => {
  const backoff = new Backoff({ baseMs: 100, capMs: 1_000, random: () => 0.5 });
  assertEquals([backoff.next(), backoff.next(), backoff.next(), backoff.attempt], [
    50,
    100,
    200,
    3,
  ]);
  backoff.reset();
  assertEquals([backoff.next(), backoff.attempt], [50, 1]);
});

Deno.test({
  name: "RelayClient over the socket: activity pushes arrive and a whole turn needs no HTTP",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await withRelay({}, async (relay) => {
      const h = harness(workerConfig(relay));
      try {
        h.client.start();
        await waitUntil(() => h.client.connected, "the socket to connect");
        assertEquals(h.connections, [true]);

        const token = await visitorToken(relay.url);
        await postMessage(relay.url, token, "sock-warmup", "Hello?");
        await waitUntil(() => h.activity.includes("sock-warmup"), "chat_activity");

        await answerOneTurn(h, relay, "sock-chat");
        assertEquals(h.httpCalls, [], "claim, renew, release, state, chunks and replies");

        // What the socket would refuse without naming the request goes over HTTP instead,
        // which answers with a precise 400.
        const badChat = await rejection(() => h.client.setState("not a chat id", "processing"));
        assertEquals(badChat.status, 400);
        assertEquals(h.httpCalls, ["POST /api/chat/not%20a%20chat%20id/worker-state"]);

        // A visitor pressing stop reaches the worker as a cancel push.
        await postMessage(relay.url, token, "sock-stop", "Tell me a long story");
        const turn = await h.client.claim("sock-stop");
        assert(turn, "a turn to cancel");
        const cancelled = await request(`${relay.url}/api/chat/sock-stop/cancel`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}` },
        });
        assertEquals(cancelled.status, 200);
        await waitUntil(() => h.cancels.length > 0, "the cancel push");
        assertEquals(h.cancels, [["sock-stop", turn.id]]);
        assertEquals((await h.client.renew(turn.id, turn.leaseId)).cancelRequested, true);
        await h.client.release(turn.id, turn.leaseId);
      } finally {
        await h.client.stop();
      }
      assertEquals(h.client.connected, false);
      assertEquals(h.connections, [true, false]);
      assertCleanLog(h.lines);
    });
  },
});

Deno.test({
  name: "RelayClient over HTTP: a client that was never started does the same turn",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await withRelay({}, async (relay) => {
      const h = harness(workerConfig(relay));
      await answerOneTurn(h, relay, "http-chat");
      for (
        const call of [
          "POST /api/worker/turns/claim",
          "POST /api/chat/http-chat/worker-state",
          "POST /api/chat/http-chat/agent-chunk",
          "POST /api/chat/http-chat/agent",
        ]
      ) {
        assert(h.httpCalls.includes(call), `expected ${call} in ${h.httpCalls}`);
      }
      assert(h.httpCalls.some((c) => /^POST \/api\/worker\/turns\/[^/]+\/release$/.test(c)));
      assert(h.httpCalls.some((c) => /^POST \/api\/worker\/turns\/[^/]+\/renew$/.test(c)));
      assertEquals(h.connections, []);
      assertCleanLog(h.lines);
    });
  },
});

Deno.test({
  name: "RelayClient reads history and open chats and reports status; refusals keep their code",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await withRelay({}, async (relay) => {
      const h = harness(workerConfig(relay));
      const token = await visitorToken(relay.url);
      assertEquals(await h.client.openChats(), []);
      const question = await postMessage(relay.url, token, "read-chat", QUESTION);
      assertEquals(await h.client.openChats(), ["read-chat"]);
      const history = await h.client.history("read-chat");
      assertEquals(history.map((m) => [m.id, m.sender]), [[question.body.id, "Visitor"]]);

      await h.client.reportStatus({
        agentApi: { status: "online", detail: "ok", latencyMs: 3 },
        llm: { status: "degraded", detail: "slow" },
      });
      const health = await request(`${relay.url}/api/health`);
      assertEquals(health.body.workerStatus.agentApi.status, "online");
      assertEquals(health.body.workerStatus.llm.status, "degraded");

      const unknown = await rejection(() => h.client.renew("no-such-turn", "no-such-lease"));
      assertEquals([unknown.status, unknown.code], [409, "lease_lost"]);
      const tooLong = await rejection(() =>
        h.client.postReply("read-chat", { content: "x".repeat(300_000) })
      );
      assertEquals(tooLong.status, 413, "a 4xx is not retried");
      assertEquals(h.httpCalls.filter((c) => c === "POST /api/chat/read-chat/agent").length, 1);

      const wrongToken = harness({ ...workerConfig(relay), serviceToken: "x".repeat(40) });
      const rejected: string[] = [];
      wrongToken.client.onRejected((error) => rejected.push(error.code));
      const refused = await rejection(() => wrongToken.client.openChats());
      assertEquals([refused.status, refused.code], [401, "bad_service_token"]);
      await rejection(() => wrongToken.client.openChats());
      assertEquals(rejected, ["bad_service_token"], "onRejected() fires once");
    });
  },
});

Deno.test({
  name: "RelayClient signs HTTP and the socket handshake; a wrong HMAC secret gets bad_signature",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await withRelay({ HMAC_ENABLED: "true", HMAC_SECRET }, async (relay) => {
      const good = harness(workerConfig(relay, { HMAC_ENABLED: "true", HMAC_SECRET }));
      const bad = harness(
        workerConfig(relay, {
          HMAC_ENABLED: "true",
          HMAC_SECRET: "wrong-0123456789abcdef0123456789abcdef",
        }),
      );
      try {
        // HTTP: GET with an empty body and POST with a JSON body.
        assertEquals(await good.client.openChats(), []);
        assertEquals(await good.client.claim(), null);
        for (const call of [() => bad.client.openChats(), () => bad.client.claim()]) {
          const error = await rejection(call);
          assertEquals([error.status, error.code], [401, "bad_signature"]);
        }

        // The socket handshake is a signed GET.
        good.client.start();
        bad.client.start();
        await waitUntil(() => good.client.connected, "the signed socket to connect");
        const token = await visitorToken(relay.url);
        await postMessage(relay.url, token, "hmac-chat", QUESTION);
        await waitUntil(() => good.activity.includes("hmac-chat"), "chat_activity");
        const calls = good.httpCalls.length;
        const turn = await good.client.claim("hmac-chat");
        assert(turn, "a turn claimed over the signed socket");
        assertEquals(good.httpCalls.length, calls, "the claim went over the socket");
        await good.client.release(turn.id, turn.leaseId);

        await waitUntil(
          () =>
            bad.lines.some((l) =>
              l.includes("cannot connect to the relay socket") && l.includes("401")
            ),
          "the refused handshake",
        );
        assertEquals([bad.client.connected, bad.connections], [false, []]);
        assert(bad.activity.length === 0, "a refused socket hears nothing");
      } finally {
        await Promise.all([good.client.stop(), bad.client.stop()]);
      }
      assertCleanLog([...good.lines, ...bad.lines]);
    });
  },
});

Deno.test({
  name: "RelayClient reconnects by itself after the relay is killed and restarted; stop() ends it",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const relays: RelayProcess[] = [await startRelay()];
    const first = relays[0]!;
    const restart = async () => {
      const next = await startRelay({}, { dir: first.dir, port: first.port });
      relays.push(next);
      return next;
    };
    const h = harness(workerConfig(first));
    try {
      h.client.start();
      await waitUntil(() => h.client.connected, "the socket to connect");

      await first.kill();
      await waitUntil(() => !h.client.connected, "the client to notice the dead relay");
      await waitUntil(
        () => h.lines.some((l) => l.includes("cannot connect to the relay socket")),
        "a failed reconnect attempt",
      );
      const second = await restart();
      await waitUntil(() => h.client.connected, "the client to reconnect", 30_000);
      assertEquals(h.connections, [true, false, true]);

      const token = await visitorToken(second.url);
      await postMessage(second.url, token, "after-restart", QUESTION);
      await waitUntil(() => h.activity.includes("after-restart"), "activity after reconnecting");
      assert(await h.client.claim("after-restart"), "claims work after reconnecting");

      // Down again: stop() while the client is between attempts ends the attempts.
      await second.kill();
      await waitUntil(() => !h.client.connected, "the second disconnect");
      await h.client.stop();
      const attemptsAtStop = h.randomCalls();
      const third = await restart();
      await sleep(1_500);
      assertEquals(h.randomCalls(), attemptsAtStop, "no reconnect was scheduled after stop()");
      assertEquals(h.client.connected, false);
      assert(!third.lines.some((l) => l.includes("worker connected")), "nobody connected");
    } finally {
      await h.client.stop();
      for (const relay of relays) await relay.kill();
      await Deno.remove(first.dir, { recursive: true }).catch(() => {});
    }
    assertCleanLog(h.lines);
  },
});
