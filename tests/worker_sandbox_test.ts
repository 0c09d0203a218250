/**
 * The worker's sandbox (SPEC §5): what its runtime permissions stop even when the tool
 * code's own checks are wrong or bypassed, and the start-up check of config vs grants.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startModelServer } from "../lib/demo_model/model_server.ts";
import { runArgs } from "../lib/tasks/launch.ts";
import { loadWorkerConfig } from "../lib/worker/config.ts";
import { workerPermissionFlags } from "../lib/worker/permissions.ts";
import { assert, assertEquals } from "./_assert.ts";
import { postMessage, request, visitorToken } from "./_clients.ts";
import { spawnDeno } from "./_process.ts";
import { freePort, startRelay } from "./_relay_process.ts";
import { startWorker, workerEnv, writeWorkerEnv } from "./_worker_process.ts";

const WORKER_TS = fileURLToPath(new URL("../worker.ts", import.meta.url));
const PROBE_TS = fileURLToPath(new URL("./_sandbox_probe.ts", import.meta.url));

/** A local HTTP server counting the requests it receives. */
function countingServer(handler: (req: Request) => Response) {
  const port = freePort();
  let hits = 0;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, signal: ac.signal, onListen() {} },
    (req) => {
      hits++;
      return handler(req);
    },
  );
  return {
    url: `http://127.0.0.1:${port}`,
    get hits() {
      return hits;
    },
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test("code under the worker's flags cannot read, write, fetch or run outside its grants", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-sandbox-" });
  const outside = countingServer(() => new Response("secret"));
  const redirector = countingServer(() =>
    new Response(null, { status: 302, headers: { location: `${outside.url}/via-redirect` } })
  );
  try {
    const outsideFile = join(dir, "secret.txt");
    await Deno.writeTextFile(outsideFile, "secret");
    const env = workerEnv("http://127.0.0.1:9", "http://127.0.0.1:8/v1", dir, {
      LIVE_ALLOWED_HOSTS: new URL(redirector.url).host,
    });
    const envFile = await writeWorkerEnv(dir, env);
    const flags = workerPermissionFlags(loadWorkerConfig(envFile), envFile);
    const probe = spawnDeno([
      "run",
      ...flags,
      PROBE_TS,
      `--env-file=${envFile}`,
      `--outside-file=${outsideFile}`,
      `--outside-dir=${dir}`,
      `--outside-url=${outside.url}/`,
      `--redirect-url=${redirector.url}/`,
    ]);
    const line = await probe.waitForLine(/^\{"readContent"/);
    await probe.status;
    assertEquals(JSON.parse(line), {
      readContent: "allowed",
      readOutside: "denied",
      writeEnhancement: "allowed",
      writeOutside: "denied",
      fetchOutside: "denied",
      fetchRedirectedOutside: "denied",
      run: "denied",
      envOutside: "denied",
      sys: "denied",
    });
    assertEquals(outside.hits, 0, "the host outside the grants received nothing");
    assertEquals(redirector.hits, 1, "the allowed host was asked once");
  } finally {
    await Promise.all([outside.close(), redirector.close()]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the running worker refuses a URL or a redirect off its allowlist before any request", async () => {
  const relay = await startRelay();
  const model = startModelServer({ chunkDelayMs: 1 });
  const secret = countingServer(() => new Response("secret"));
  const site = countingServer(() =>
    new Response(null, { status: 302, headers: { location: `${secret.url}/stolen` } })
  );
  const siteHost = new URL(site.url).host;
  const worker = await startWorker(relay.url, model.url, relay.dir, {
    LIVE_ALLOWED_HOSTS: siteHost,
  });
  try {
    const token = await visitorToken(relay.url);
    const ask = (chatId: string, url: string) =>
      postMessage(relay.url, token, chatId, `[tool fetch_live_page {"url":"${url}"}] Read it`);
    await ask("redirected", `${site.url}/page`);
    await ask("direct", `${secret.url}/page`);
    const reply = async (chatId: string) => {
      for (let i = 0; i < 300; i++) {
        const res = await request(`${relay.url}/api/chat/${chatId}/messages`, {
          headers: { authorization: `Bearer ${token}` },
        });
        const terra = res.body.find((m: { sender: string }) => m.sender === "Terra");
        if (terra) return terra.content as string;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`No reply in ${chatId}`);
    };
    // The allowed site was asked; its redirect to another host was refused, not followed.
    // The demo model tells a tool's refusal as a sentence (issue 16), so read the words.
    const redirected = await reply("redirected");
    assert(redirected.includes("a redirect was refused"), redirected);
    assert(site.hits >= 1);
    // A URL off the allowlist is refused by the tool before any request.
    const direct = await reply("direct");
    assert(direct.includes("is not on the live-fetch allowlist"), direct);
    assertEquals(secret.hits, 0, "the host outside the grants received nothing");
  } finally {
    await worker.kill();
    await Promise.all([site.close(), secret.close(), model.close()]);
    await relay.kill();
    await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a worker whose grants do not cover its config refuses to start, naming the gap", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-sandbox-" });
  try {
    const base = workerEnv("http://127.0.0.1:9", "http://127.0.0.1:8/v1", dir);
    const builtFor = await writeWorkerEnv(dir, base);
    const runsWith = await writeWorkerEnv(dir, { ...base, LIVE_ALLOWED_HOSTS: "docs.example.org" });
    const flags = workerPermissionFlags(loadWorkerConfig(builtFor), builtFor);
    const child = spawnDeno([
      "run",
      ...flags.map((f) => f.startsWith("--allow-read=") ? `${f},${runsWith}` : f),
      WORKER_TS,
      `--env-file=${runsWith}`,
    ]);
    const status = await child.status;
    assertEquals(status.code, 78);
    const output = child.lines.join("\n");
    assert(output.includes("--allow-net=docs.example.org:443"), output);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a worker run with -A warns loudly that its sandbox is weakened", async () => {
  const relay = await startRelay();
  const model = startModelServer();
  try {
    const env = workerEnv(relay.url, model.url, relay.dir);
    const envFile = await writeWorkerEnv(relay.dir, env);
    const args = runArgs("worker", envFile).filter((a) =>
      !a.startsWith("--allow-") && !a.startsWith("--deny-")
    );
    const child = spawnDeno(["run", "-A", ...args.slice(1)]);
    try {
      const warning = await child.waitForLine("SANDBOX WEAKENED");
      assert(warning.includes('"level":"warn"'));
    } finally {
      await child.kill();
    }
  } finally {
    await model.close();
    await relay.kill();
    await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a worker with missing or malformed config stops at start, naming each variable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-config-" });
  try {
    const envFile = await writeWorkerEnv(dir, {
      SERVICE_TOKEN: "short",
      AGENT_API_URL: "not a url",
      MAX_CONCURRENT_CHATS: "many",
    });
    const child = spawnDeno([
      "run",
      "--allow-read",
      "--allow-env",
      WORKER_TS,
      `--env-file=${envFile}`,
    ]);
    assertEquals((await child.status).code, 78);
    const output = child.lines.join("\n");
    for (const name of ["API_BASE_URL", "SERVICE_TOKEN", "AGENT_API_URL", "MAX_CONCURRENT_CHATS"]) {
      assert(output.includes(`${name}:`), `${name} is named in:\n${output}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
