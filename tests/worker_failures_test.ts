/**
 * How the worker fails, as an operator reads it in the journal (issue 15): a refused
 * service token stops it with one line and exit 78 (which the unit does not restart); a
 * model server that is down is logged at start and on every change with its URL and the
 * real cause; a relay outage during an answer is a couple of lines, not one per token.
 */
import { startModelServer } from "../lib/demo_model/model_server.ts";
import { runArgs } from "../lib/launch.ts";
import { assert, assertEquals } from "./_assert.ts";
import { postMessage, request, visitorSocket, visitorToken } from "./_clients.ts";
import { spawnDeno } from "./_process.ts";
import { freePort, startRelay, withRelay } from "./_relay_process.ts";
import { startWorker, workerEnv, writeWorkerEnv } from "./_worker_process.ts";

/** The JSON log entries among `lines` whose `msg` starts with `prefix`. */
function entries(lines: string[], prefix: string): Record<string, unknown>[] {
  return lines.flatMap((line) => {
    try {
      const entry = JSON.parse(line);
      return typeof entry.msg === "string" && entry.msg.startsWith(prefix) ? [entry] : [];
    } catch {
      return [];
    }
  });
}

/** Waits (bounded) until `predicate` holds. */
async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("a service token the relay refuses stops the worker with one line naming SERVICE_TOKEN and exit 78", async () => {
  await withRelay({}, async (relay) => {
    const model = startModelServer();
    try {
      const wrong = Array.from(crypto.getRandomValues(new Uint8Array(24)))
        .map((b) => b.toString(16).padStart(2, "0")).join("");
      const env = workerEnv(relay.url, model.url, relay.dir, {
        SERVICE_TOKEN: wrong,
        LOG_LEVEL: "info",
      });
      const envFile = await writeWorkerEnv(relay.dir, env);
      const child = spawnDeno(runArgs("worker", envFile));
      const timer = setTimeout(() => child.kill(), 20_000);
      const status = await child.status;
      clearTimeout(timer);
      const output = child.lines.join("\n");
      assertEquals(status.code, 78, output);
      const named = child.lines.filter((l) => l.includes("SERVICE_TOKEN"));
      assertEquals(named.length, 1, output);
      assert(named[0]!.startsWith("terrarium-worker: The relay at "), output);
      assert(named[0]!.includes(`set SERVICE_TOKEN in ${envFile}`), output);
      assert(!output.includes(wrong), "the token itself is never printed");
      assertEquals(entries(child.lines, "").filter((e) => e.level === "warn"), [], output);
    } finally {
      await model.close();
    }
  });
  // 78 is the status the worker's unit does not restart.
  const unit = await Deno.readTextFile(
    new URL("../systemd/terrarium-worker.service", import.meta.url),
  );
  assert(/^RestartPreventExitStatus=78$/m.test(unit), "the unit does not restart on 78");
});

Deno.test("agent and model health are logged at start and on each change, with the URL and the cause", async () => {
  await withRelay({}, async (relay) => {
    const port = freePort();
    const modelUrl = `http://127.0.0.1:${port}/v1`;
    const worker = await startWorker(relay.url, modelUrl, relay.dir, {
      STATUS_POLL_INTERVAL_SECONDS: "1",
      LLM_STATUS_POLL_INTERVAL_SECONDS: "1",
      LOG_LEVEL: "info",
    });
    let model: ReturnType<typeof startModelServer> | null = null;
    try {
      await worker.waitForLine('"msg":"agent is down"');
      await worker.waitForLine('"msg":"model is down"');
      const [agentDown] = entries(worker.lines, "agent is down");
      assertEquals(agentDown!.url, `http://127.0.0.1:${port}/health`);
      assertEquals(agentDown!.detail, "Health check failed: connection refused");
      const [modelDown] = entries(worker.lines, "model is down");
      assertEquals(modelDown!.url, `http://127.0.0.1:${port}/v1`);
      assert(String(modelDown!.detail).endsWith("connection refused"), String(modelDown!.detail));

      // The page is told the cause, not the error's name.
      const agentDetail = async () => {
        const chain = (await request(`${relay.url}/api/health`)).body.chain as {
          name: string;
          detail: string;
        }[];
        return chain.find((link) => link.name === "agent")?.detail;
      };
      let detail = await agentDetail();
      for (let i = 0; i < 100 && detail !== "Health check failed: connection refused"; i++) {
        await new Promise((r) => setTimeout(r, 100));
        detail = await agentDetail();
      }
      assertEquals(detail, "Health check failed: connection refused");

      model = startModelServer({ port });
      await worker.waitForLine('"msg":"agent is up"');
      await worker.waitForLine('"msg":"model is up"');
      await model.close();
      model = null;
      await waitUntil(() => entries(worker.lines, "agent is down").length === 2, "down again");
      // Polled every second, but logged only when the status changes.
      await new Promise((r) => setTimeout(r, 2_500));
      assertEquals(entries(worker.lines, "agent is down").length, 2, worker.lines.join("\n"));
      assertEquals(entries(worker.lines, "agent is up").length, 1);
    } finally {
      await model?.close();
      await worker.kill();
    }
  });
});

Deno.test("a relay outage during a streamed answer is logged in a few lines, not one per token", async () => {
  const port = freePort();
  let relay = await startRelay({ RATE_LIMIT_MAX_PER_IP: "1000" }, { port });
  const model = startModelServer({ chunkDelayMs: 10 });
  const worker = await startWorker(relay.url, model.url, relay.dir, { LOG_LEVEL: "info" });
  const dir = relay.dir;
  try {
    const token = await visitorToken(relay.url);
    const watcher = await visitorSocket(relay.url, "outage", token);
    await postMessage(relay.url, token, "outage", "[long 800] tell me a long story");
    await waitUntil(() => watcher.events.some((e) => e.type === "assistantChunk"), "a chunk");
    await watcher.close();
    await relay.kill();
    await waitUntil(
      () => entries(worker.lines, "chunk not delivered").length > 0,
      "the first failed chunk",
    );
    relay = await startRelay({ RATE_LIMIT_MAX_PER_IP: "1000" }, { port, dir });
    // The fold's count comes at the end of its 10 s window.
    await waitUntil(
      () => entries(worker.lines, "chunk not delivered …").length > 0,
      "the count of folded warnings",
      15_000,
    );
    const lines = entries(worker.lines, "chunk not delivered");
    const [summary] = entries(worker.lines, "chunk not delivered …");
    assert(lines.length <= 3, `at most one line and one count per 10 s:\n${lines.join("\n")}`);
    assert(Number(summary!.repeats) > 5, `many chunks were folded: ${JSON.stringify(summary)}`);
    assert(/ more in the last 10 s$/.test(String(summary!.msg)), String(summary!.msg));
  } finally {
    await worker.kill();
    await model.close();
    await relay.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
