/**
 * Issue 16 end to end, with a real relay, a real worker (its own permission flags) and the
 * demo model: prose answers with their sources, no JSON in any answer, a failed turn kept
 * as an error on its message (never as Terra's words, never in the model's history), Retry,
 * an interrupted stream, and the site words published and kept across a relay restart.
 */
import { FAILURE_SENTENCES } from "../lib/worker/failure_words.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  bearer,
  chatHistory,
  type Json,
  postMessage,
  request,
  sleep,
  visitorSocket,
} from "./_clients.ts";
import { startRelay } from "./_relay_process.ts";
import { waitForReplies, withStack } from "./_worker_process.ts";

/** Waits (bounded) until `check` holds, polling. */
async function eventually<T>(
  read: () => Promise<T>,
  check: (value: T) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${what}: ${JSON.stringify(value)}`);
    }
    await sleep(100);
  }
}

/** Every text the model was sent in `requests`, joined. */
function sentTexts(requests: { body: unknown }[]): string[] {
  return requests.flatMap((r) =>
    ((r.body as { messages?: { content?: unknown }[] }).messages ?? []).map((m) =>
      typeof m.content === "string" ? m.content : ""
    )
  );
}

Deno.test("the README's question gets a prose answer with links, and the reply carries its sources", async () => {
  await withStack({}, async ({ relay, token, worker }) => {
    await worker();
    await postMessage(relay.url, token, "readme", "What does Morgan run at home?");
    const [, reply] = await waitForReplies(relay, token, "readme", 1);
    assert(!reply.content.includes('{"'), reply.content);
    assert(reply.content.includes("modest hardware"), reply.content);
    assert(reply.content.includes("[About Morgan](https://example.com/about)"), reply.content);
    // Several sentences of prose, not a dump: each ends in a stop, none is cut at 300 chars.
    assert(reply.content.split(/[.!?]\s/).length >= 3, reply.content);
    assertEquals(reply.sources.map((s: Json) => [s.kind, s.url]), [
      ["page", "https://example.com/about"],
      ["page", "https://example.com/projects/terrarium"],
      ["page", "https://example.com/blog/self-hosting-llms"],
    ]);
    assertEquals(reply.sources[0].title, "About Morgan");
  });
});

Deno.test("no demo answer contains JSON, whichever directive drove it", async () => {
  await withStack({}, async ({ relay, token, worker }) => {
    await worker({ MAX_CONCURRENT_CHATS: "4" });
    const questions: [string, string][] = [
      ["answer", "[answer]Plain **words**[/answer]"],
      ["long", "[long 12] Count"],
      ["profile", "[tool get_profile {}] Who is Morgan?"],
      ["multi", '[tool list_github_repos {}] [tool get_github_repo {"repo":"lantern"}] Repos?'],
      ["error", '[tool fetch_live_page {"url":"https://not-allowed.test/"}] Fetch it'],
      ["unknown", '[tool get_github_repo {"repo":"nope"}] Missing repo'],
      ["loop", "[loop] [tool get_profile {}] Again and again"],
      ["ollama", "[ollama] [tool list_site_pages {}] Pages?"],
      ["tags", '[think tags] [tool fetch_site_page {"url":"/lantern"}] Lantern page'],
      ["search", "How can I contact Morgan?"],
    ];
    for (const [chat, question] of questions) await postMessage(relay.url, token, chat, question);
    for (const [chat] of questions) {
      const [, reply] = await waitForReplies(relay, token, chat, 1, 60_000);
      assert(reply.content.trim().length > 0, chat);
      assert(!reply.content.includes('{"'), `${chat}: ${reply.content}`);
      assert(!reply.content.includes("\\n"), `${chat}: no escaped newlines: ${reply.content}`);
      if (chat === "error") {
        assert(reply.content.startsWith("I could not fetch that page:"), reply.content);
      }
      if (chat === "multi") {
        assertEquals(reply.content.split("\n\n").length, 2, "a paragraph per tool");
        assert(reply.content.includes("(https://github.com/morgan-example/lantern)"));
        assertEquals(reply.sources.map((s: Json) => s.kind), ["github"]);
      }
    }
  });
});

Deno.test("a model 500 is an error on the visitor message, pushes the status, and Retry answers it with a clean history", async () => {
  await withStack({}, async ({ relay, model, token, worker }) => {
    await worker({ AGENT_MAX_RETRIES: "1" });
    const health = () => request(`${relay.url}/api/health`).then((r) => r.body);
    await eventually(health, (h) => h.workerStatus?.llm.status === "online", "first probe");
    model.setFault("error500");
    const visitor = await visitorSocket(relay.url, "broken", token);
    const question = (await postMessage(relay.url, token, "broken", "[answer]First[/answer]")).body;
    const events = await visitor.waitFor(
      (es) => es.some((e) => e.type === "workerState" && e.state === "error"),
      40_000,
      "error state",
    );
    const error = events.find((e) => e.type === "workerState" && e.state === "error");
    assertEquals([error.turnId, error.code], [question.id, "model_unavailable"]);
    assert(FAILURE_SENTENCES.has(error.detail), error.detail);

    const stored = await chatHistory(relay.url, token, "broken");
    assertEquals(
      stored.map((m: Json) => m.sender),
      ["Visitor"],
      "no Terra message holds the error",
    );
    assertEquals([stored[0].failure.code, stored[0].failure.error], [
      "model_unavailable",
      error.detail,
    ]);
    // The failure reached the status chain at once, not at the next poll (300 s by default).
    const down = await eventually(
      health,
      (h) => h.workerStatus?.llm.status === "offline",
      "push",
      10_000,
    );
    assert(down.workerStatus.llm.detail.includes("just failed"), down.workerStatus.llm.detail);

    model.setFault("none");
    const before = model.requests.length;
    const retry = await request(`${relay.url}/api/chat/broken/messages/${question.id}/retry`, {
      method: "POST",
      headers: bearer(token),
    });
    assertEquals([retry.status, retry.body], [202, { ok: true }]);
    const answered = await waitForReplies(relay, token, "broken", 1, 40_000);
    assertEquals(answered.map((m: Json) => [m.sender, m.content, m.failure]), [
      ["Visitor", "[answer]First[/answer]", undefined],
      ["Terra", "First", undefined],
    ]);
    assertEquals(answered[1].replyTo, question.id);
    await eventually(
      health,
      (h) => h.workerStatus?.llm.status === "online",
      "recovery pushed",
      10_000,
    );

    await postMessage(relay.url, token, "broken", "[answer]Second[/answer]");
    await waitForReplies(relay, token, "broken", 2, 40_000);
    const texts = sentTexts(model.requests.slice(before));
    assert(texts.includes("First"), "the retried answer is history");
    for (const sentence of FAILURE_SENTENCES) {
      assert(!texts.some((t) => t.includes(sentence)), `the model never sees "${sentence}"`);
    }
    await visitor.close();
  });
});

Deno.test("a stream cut after some text keeps it as an interrupted reply, not a stopped one", async () => {
  await withStack({}, async ({ relay, model, token, worker }) => {
    await worker({ AGENT_MAX_RETRIES: "1" });
    // The worker's first LLM probe is a completion too: let it pass before the one cut.
    await eventually(
      () => request(`${relay.url}/api/health`).then((r) => r.body),
      (h) => h.workerStatus?.llm.status === "online",
      "first probe",
    );
    model.setFault("cut", 1);
    const question = (await postMessage(relay.url, token, "cut", "[long 200]")).body;
    const [, partial] = await waitForReplies(relay, token, "cut", 1, 40_000);
    assertEquals([partial.interrupted, partial.stopped, partial.replyTo], [
      true,
      undefined,
      question.id,
    ]);
    assert(partial.content.startsWith("word1"), partial.content);
    assert(!partial.content.includes("word200"), "only what came before the cut");
    const [visitorMessage] = await chatHistory(relay.url, token, "cut");
    assertEquals(visitorMessage.failure.code, "model_stream_cut");

    const retry = await request(`${relay.url}/api/chat/cut/messages/${question.id}/retry`, {
      method: "POST",
      headers: bearer(token),
    });
    assertEquals(retry.status, 202);
    const messages = await waitForReplies(relay, token, "cut", 2, 40_000);
    assertEquals(messages.map((m: Json) => [m.sender, m.interrupted ?? false, m.replyTo ?? null]), [
      ["Visitor", false, null],
      ["Terra", true, question.id],
      ["Terra", false, question.id],
    ]);
    assert(messages[2].content.endsWith("word200"), "the retry's answer is whole");
  });
});

Deno.test("the worker publishes the site words, and the relay serves them after a restart without a worker", async () => {
  await withStack({}, async ({ relay, workers, worker }) => {
    const site = (base: string) => request(`${base}/api/site`).then((r) => r.body);
    assertEquals((await site(relay.url)).siteName, "Terrarium", "the built-in words first");
    await worker();
    const published = await eventually(
      () => site(relay.url),
      (s) => s.siteName === "Morgan Example",
      "publish",
    );
    assertEquals(published.suggestions[0], "What does Morgan run at home?");
    assert(published.greeting.includes("**Terra**"));
    await Promise.all(workers.splice(0).map((w) => w.kill()));
    await relay.kill();
    const again = await startRelay({ RATE_LIMIT_MAX_PER_IP: "1000" }, {
      dir: relay.dir,
      port: relay.port,
    });
    try {
      assertEquals(await site(again.url), published, "kept in the relay's store");
    } finally {
      await again.kill();
    }
  });
});
