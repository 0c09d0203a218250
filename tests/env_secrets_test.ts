/**
 * Secrets from the operator's side (issue 11 finding 9, issue 15): the shipped env examples
 * are refused by the real relay and worker with exit 78 and the fix named; `deno task
 * init-env` writes files both accept, and a worker started from them serves the relay.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startModelServer } from "../lib/demo_model/model_server.ts";
import { readEnvFile } from "../lib/env.ts";
import { assert, assertEquals } from "./_assert.ts";
import { request, sleep } from "./_clients.ts";
import { spawnDeno } from "./_process.ts";
import { startRelay } from "./_relay_process.ts";
import { startWorker } from "./_worker_process.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const INIT_ENV_TASK: string = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")))
  .tasks["init-env"];

/** Runs `deno task init-env` as deno.json defines it (its own flags), with `args`. */
function initEnv(args: string[]) {
  const taskArgs = INIT_ENV_TASK.replace(/^deno /, "").split(" ").map((part) =>
    part.endsWith(".ts") ? join(ROOT, part) : part
  );
  return spawnDeno([...taskArgs, ...args]);
}

async function exitOf(args: string[]): Promise<{ code: number; output: string }> {
  const child = spawnDeno(args);
  const { code } = await child.status;
  return { code, output: child.lines.join("\n") };
}

Deno.test("the relay refuses systemd/relay.env.example as shipped, naming each secret", async () => {
  const { code, output } = await exitOf([
    "run",
    "--allow-read",
    "--allow-env",
    join(ROOT, "relay.ts"),
    `--env-file=${join(ROOT, "systemd/relay.env.example")}`,
  ]);
  assertEquals(code, 78, output);
  for (const name of ["CHAT_PASSWORD", "SERVICE_TOKEN", "ADMIN_TOKEN"]) {
    assert(output.includes(`${name}: `), `${name} is named in:\n${output}`);
  }
  assert(output.includes("deno task init-env"), output);
  assert(!output.includes("panicked"), output);
});

Deno.test("the worker refuses systemd/worker.env.example's token and model name", async () => {
  const { code, output } = await exitOf([
    "run",
    "--allow-read",
    "--allow-env",
    join(ROOT, "worker.ts"),
    `--env-file=${join(ROOT, "systemd/worker.env.example")}`,
  ]);
  assertEquals(code, 78, output);
  assert(/SERVICE_TOKEN: .*init-env/.test(output), output);
  assert(/AGENT_MODEL: looks like a placeholder/.test(output), output);
});

Deno.test("DEMO_MODE alone lets the README's example secrets start a relay", async () => {
  const relay = await startRelay({
    DEMO_MODE: "true",
    CHAT_PASSWORD: "pick-an-access-code",
    SERVICE_TOKEN: "the-relays-service-token",
    ADMIN_TOKEN: "another-long-random-value-here",
  });
  try {
    const res = await request(`${relay.url}/healthz`);
    assertEquals(res.status, 200);
  } finally {
    await relay.kill();
    await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("init-env writes 0600 files with one service token and never overwrites", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-init-env-" });
  try {
    const first = initEnv([dir]);
    assertEquals((await first.status).code, 0, first.lines.join("\n"));
    const relayFile = join(dir, "relay.env");
    const workerFile = join(dir, "worker.env");
    for (const file of [relayFile, workerFile]) {
      assertEquals(Deno.statSync(file).mode! & 0o777, 0o600, file);
    }
    const relayEnv = readEnvFile(relayFile);
    const workerEnv = readEnvFile(workerFile);
    assertEquals(relayEnv.SERVICE_TOKEN, workerEnv.SERVICE_TOKEN);
    assert(relayEnv.SERVICE_TOKEN!.length >= 43);
    assert(relayEnv.ADMIN_TOKEN !== relayEnv.SERVICE_TOKEN);
    // Every other name of the examples is there.
    assertEquals(relayEnv.ALLOWED_ORIGINS, "https://example.com");
    assertEquals(workerEnv.AGENT_API_URL, "http://127.0.0.1:8000/v1");
    assertEquals(workerEnv.AGENT_MODEL, undefined);

    const before = Deno.readTextFileSync(relayFile);
    const second = initEnv([dir]);
    assertEquals((await second.status).code, 1);
    assert(second.lines.join("\n").includes("never overwrites"), second.lines.join("\n"));
    assertEquals(Deno.readTextFileSync(relayFile), before);

    // Two runs draw different secrets.
    const other = join(dir, "other");
    await Deno.mkdir(other);
    assertEquals((await initEnv([join(other, "r.env"), join(other, "w.env")]).status).code, 0);
    assert(readEnvFile(join(other, "r.env")).SERVICE_TOKEN !== relayEnv.SERVICE_TOKEN);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a relay and a worker started from init-env's files work together", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-init-env-" });
  const model = startModelServer({ chunkDelayMs: 0 });
  let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  try {
    assertEquals((await initEnv([dir]).status).code, 0);
    // Only where things run on this machine changes; the secrets are init-env's own.
    const { PORT: _port, HOSTNAME: _host, ...relayEnv } = readEnvFile(join(dir, "relay.env"));
    relay = await startRelay(relayEnv);
    const workerEnv = readEnvFile(join(dir, "worker.env"));
    worker = await startWorker(`${relay.url}${relayEnv.BASE_PATH ?? ""}`, model.url, dir, {
      ...workerEnv,
      API_BASE_URL: `${relay.url}${relayEnv.BASE_PATH ?? ""}`,
      AGENT_API_URL: model.url,
      AGENT_HEALTH_URL: model.url.replace(/\/v1$/, "/health"),
      CONTENT_DIR: join(ROOT, "content"),
      ENHANCEMENT_DIR: join(dir, "enhancements"),
      CHAT_LOG_DIR: join(dir, "logs"),
    });
    let ready = false;
    for (let i = 0; i < 100 && !ready; i++) {
      ready = (await request(`${relay.url}/api/health`)).body.workerReady === true;
      if (!ready) await sleep(100);
    }
    assert(ready, "the relay sees the worker, so it accepted init-env's service token");
  } finally {
    await worker?.kill();
    await relay?.kill();
    await model.close();
    if (relay) await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
