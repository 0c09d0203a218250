/**
 * The worker as a real process (its own permission flags) against a real relay process and
 * our OpenAI-compatible model server: answers with tools, crashes, two workers, faults,
 * cancel.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { chatHistory, type Json, postMessage, request, visitorSocket } from "./_clients.ts";
import { freePort, startRelay } from "./_relay_process.ts";
import { waitForReplies, withStack } from "./_worker_process.ts";

Deno.test("a visitor question gets a streamed answer that used a tool, stored once", async () => {
  await withStack({}, async ({ relay, token, worker }) => {
    const chatLogDir = join(relay.dir, "chat-logs");
    await worker({ CHAT_LOG_DIR: chatLogDir });
    const visitor = await visitorSocket(relay.url, "tool-chat", token);
    await postMessage(relay.url, token, "tool-chat", "[tool get_profile {}] Who is Morgan?");
    await visitor.waitFor(
      (es) => es.some((e) => e.type === "message" && e.sender === "Terra"),
      30_000,
      "reply",
    );

    const chunks = visitor.events.filter((e) => e.type === "assistantChunk");
    const tool = chunks.filter((c) => c.kind === "tool").map((c) => c.content).join("");
    assertEquals(tool, "Reading the profile…\n");
    assert(chunks.some((c) => c.kind === "reasoning"), "reasoning streamed apart from the answer");
    // The answer chunks, applied at their offsets, rebuild the stored reply exactly.
    let text = "";
    for (const c of chunks.filter((c) => c.kind === "answer")) {
      text = text.slice(0, c.offset) + c.content;
    }
    const reply = visitor.events.find((e) => e.type === "message" && e.sender === "Terra");
    assertEquals(text, reply.content);
    assert(reply.content.includes("software engineer"), "the answer used the tool's result");
    const seqs = visitor.events.filter((e) => e.type !== "ready").map((e) => e.seq);
    assertEquals(seqs, [...seqs].sort((a, b) => a - b));

    const stored = await chatHistory(relay.url, token, "tool-chat");
    assertEquals(stored.map((m: Json) => m.sender), ["Visitor", "Terra"]);
    // The worker keeps its own transcript when CHAT_LOG_DIR is set.
    let logged: Json = null;
    for (let i = 0; i < 50 && !logged; i++) {
      try {
        for await (const file of Deno.readDir(chatLogDir)) {
          logged = JSON.parse((await Deno.readTextFile(join(chatLogDir, file.name))).trim());
        }
      } catch { /* not written yet */ }
      if (!logged) await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals([logged.outcome, logged.tools, logged.answer], [
      "answered",
      ["get_profile"],
      reply.content,
    ]);
    await visitor.close();
  });
});

Deno.test("with its socket down the worker polls and answers over HTTP, and reports health", async () => {
  await withStack({}, async ({ relay, token, worker }) => {
    // A socket URL nobody listens on: the worker must fall back to polling and HTTP.
    const deadPort = freePort();
    await worker({ WORKER_WS_URL: `ws://127.0.0.1:${deadPort}/api/worker/updates` });
    await postMessage(relay.url, token, "polled", "[answer]Over HTTP[/answer]");
    const messages = await waitForReplies(relay, token, "polled", 1);
    assertEquals(messages.at(-1).content, "Over HTTP");

    for (let i = 0; i < 100; i++) {
      const health = (await request(`${relay.url}/api/health`)).body;
      const status = Object.fromEntries(health.chain.map((l: Json) => [l.name, l.status]));
      if (status.llm === "online") {
        assertEquals([health.workerReady, status.worker, status.agent], [true, "online", "online"]);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the worker never reported the agent and LLM as online");
  });
});

Deno.test("the worker reconnects after the relay restarts and answers new questions", async () => {
  await withStack({}, async ({ relay, token, worker }) => {
    const running = await worker();
    await postMessage(relay.url, token, "before", "[answer]One[/answer]");
    await waitForReplies(relay, token, "before", 1);
    await relay.kill();
    const again = await startRelay({ RATE_LIMIT_MAX_PER_IP: "1000" }, {
      dir: relay.dir,
      port: relay.port,
    });
    try {
      await running.waitForLine(/relay socket closed/);
      await postMessage(again.url, token, "after", "[answer]Two[/answer]");
      const messages = await waitForReplies(again, token, "after", 1, 60_000);
      assertEquals(messages.at(-1).content, "Two");
      assertEquals(
        (await chatHistory(again.url, token, "before")).length,
        2,
        "nothing answered twice",
      );
    } finally {
      await again.kill();
    }
  });
});

Deno.test("a worker killed mid-answer is replaced and the turn is answered exactly once", async () => {
  await withStack({ TURN_LEASE_SECONDS: "2" }, async ({ relay, model, token, worker }) => {
    const first = await worker();
    await postMessage(relay.url, token, "crash-chat", "Hello before the crash");
    await waitForReplies(relay, token, "crash-chat", 1);

    model.setFault("none");
    const visitor = await visitorSocket(relay.url, "crash-chat", token);
    await postMessage(relay.url, token, "crash-chat", "[long 3000] Tell me everything");
    await visitor.waitFor(
      (es) => es.filter((e) => e.type === "assistantChunk" && e.kind === "answer").length > 5,
      30_000,
      "streaming",
    );
    await first.kill();

    await worker();
    const messages = await waitForReplies(relay, token, "crash-chat", 2, 60_000);
    assertEquals(messages.map((m: Json) => m.sender), ["Visitor", "Terra", "Visitor", "Terra"]);
    assertEquals(messages[3].replyTo, messages[2].id);
    assert(messages[3].content.endsWith("word3000"), "the new worker streamed the whole answer");
    // Nothing is answered twice, even after waiting past another lease period.
    await new Promise((r) => setTimeout(r, 2_500));
    assertEquals((await chatHistory(relay.url, token, "crash-chat")).length, 4);
    await visitor.close();
  });
});

Deno.test("SIGTERM mid-answer releases the lease, so the turn is offered to the next worker", async () => {
  await withStack({}, async ({ relay, token, worker }) => {
    const leaving = await worker({ SHUTDOWN_GRACE_SECONDS: "0" });
    const visitor = await visitorSocket(relay.url, "handoff", token);
    await postMessage(relay.url, token, "handoff", "[long 100000] Keep going");
    await visitor.waitFor(
      (es) => es.some((e) => e.type === "assistantChunk" && e.kind === "answer"),
      30_000,
      "streaming",
    );
    assertEquals(await leaving.stop(), 0);
    assert(
      leaving.lines.some((l) => l.includes("turn released for shutdown")),
      leaving.lines.join("\n"),
    );
    const open = await request(`${relay.url}/api/chats/open`, {
      headers: { "x-service-token": relay.env.SERVICE_TOKEN! },
    });
    assertEquals(open.body.chatIds, ["handoff"]);
    await visitor.close();
  });
});

Deno.test("two workers against one relay answer every turn once", async () => {
  await withStack({}, async ({ relay, token, worker }) => {
    await Promise.all([
      worker({ MAX_CONCURRENT_CHATS: "2" }),
      worker({ MAX_CONCURRENT_CHATS: "2" }),
    ]);
    const chats = Array.from({ length: 6 }, (_, i) => `pair-${i}`);
    for (const chatId of chats) {
      await postMessage(relay.url, token, chatId, `[long 40] question ${chatId}`);
    }
    for (const chatId of chats) {
      const messages = await waitForReplies(relay, token, chatId, 1, 60_000);
      assertEquals(messages.map((m: Json) => m.sender), ["Visitor", "Terra"]);
    }
    const open = await request(`${relay.url}/api/chats/open`, {
      headers: { "x-service-token": relay.env.SERVICE_TOKEN! },
    });
    assertEquals(open.body.chatIds, []);
  });
});

for (
  const [fault, words] of [
    ["error500", "not reachable"],
    ["rate_limit", "busy"],
    ["stall", "took too long"],
    ["cut", "broke off"],
  ] as const
) {
  Deno.test(`a model fault (${fault}) reaches the visitor as a clear error on that turn, and the worker recovers`, async () => {
    await withStack({}, async ({ relay, model, token, worker }) => {
      await worker({ AGENT_MAX_RETRIES: "1", AGENT_IDLE_TIMEOUT_SECONDS: "1" });
      model.setFault(fault);
      const visitor = await visitorSocket(relay.url, `fault-${fault}`, token);
      await postMessage(relay.url, token, `fault-${fault}`, "[long 50] Are you there?");
      const events = await visitor.waitFor(
        (es) => es.some((e) => e.type === "workerState" && e.state === "error"),
        40_000,
        "error state",
      );
      const error = events.find((e) => e.type === "workerState" && e.state === "error");
      assert(error.detail.includes(words), `"${error.detail}" should say "${words}"`);
      // Errors are not answers (issue 16): at most the text streamed before a cut is kept.
      const failed = await chatHistory(relay.url, token, `fault-${fault}`);
      assertEquals(failed[0].failure?.error, error.detail);
      const terra = failed.filter((m: Json) => m.sender === "Terra");
      assert(
        terra.every((m: Json) => m.interrupted && !m.content.includes(words)),
        "no error reply",
      );

      model.setFault("none");
      await postMessage(relay.url, token, `fault-${fault}`, "And now?");
      const messages = await waitForReplies(
        relay,
        token,
        `fault-${fault}`,
        terra.length + 1,
        40_000,
      );
      assert(messages.at(-1).content.length > 0);
      await visitor.close();
    });
  });
}

Deno.test("cancel aborts the model request and keeps the partial answer, marked stopped", async () => {
  await withStack({}, async ({ relay, model, token, worker }) => {
    await worker();
    const visitor = await visitorSocket(relay.url, "stop-chat", token);
    await postMessage(relay.url, token, "stop-chat", "[long 100000] Never stop");
    await visitor.waitFor(
      (es) => es.filter((e) => e.type === "assistantChunk" && e.kind === "answer").length > 3,
      30_000,
      "streaming",
    );
    const cancel = await request(`${relay.url}/api/chat/stop-chat/cancel`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(cancel.body, { cancelled: true });
    const events = await visitor.waitFor(
      (es) => es.some((e) => e.type === "message" && e.sender === "Terra"),
      30_000,
      "stopped reply",
    );
    const reply = events.find((e) => e.type === "message" && e.sender === "Terra");
    assertEquals(reply.stopped, true);
    assert(reply.content.startsWith("word1 word2"), "the partial answer is kept");
    assert(!reply.content.includes("word100000"));
    const completion = model.requests.filter((r) => JSON.stringify(r.body).includes("Never stop"));
    assert(
      completion.length >= 1 && completion.every((r) => r.aborted),
      "the model request was aborted",
    );
    await visitor.close();
  });
});
