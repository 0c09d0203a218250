/**
 * The shipped deployment files: the systemd units pass `systemd-analyze verify` and score
 * low on `systemd-analyze security`; the nginx site proxies the API and both WebSockets
 * under BASE_PATH to a real relay (nginx from Debian, started by the test).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./_assert.ts";
import {
  chatHistory,
  postMessage,
  RecordingSocket,
  visitorSocket,
  visitorToken,
  workerCall,
} from "./_clients.ts";
import { freePort, TEST_SECRETS, withRelay } from "./_relay_process.ts";

const SYSTEMD = fileURLToPath(new URL("../systemd", import.meta.url));

async function run(cmd: string, args: string[]): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, output: text };
}

for (const unit of ["terrarium-relay", "terrarium-worker"]) {
  Deno.test(`${unit}.service verifies and its exposure is at most 1.5`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      // verify insists the binary exists; point ExecStart at one that does.
      const text = (await Deno.readTextFile(join(SYSTEMD, `${unit}.service`)))
        .replace(`/usr/local/bin/${unit}`, "/bin/true");
      const path = join(dir, `${unit}.service`);
      await Deno.writeTextFile(path, text);
      const verify = await run("systemd-analyze", ["verify", path]);
      assertEquals(verify.code, 0, verify.output);
      const security = await run("systemd-analyze", ["security", "--offline=yes", path]);
      const score = Number(/Overall exposure level for .*?: ([\d.]+)/.exec(security.output)?.[1]);
      assert(score <= 1.5, `exposure ${score}:\n${security.output}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("the shipped nginx site proxies the API and both WebSockets under BASE_PATH", async () => {
  await withRelay({ BASE_PATH: "/terrarium", TRUST_PROXY: "true" }, async (relay) => {
    const dir = await Deno.makeTempDir({ prefix: "terrarium-nginx-" });
    const port = freePort();
    // The shipped site, with only its ports and name changed for this machine.
    const site = (await Deno.readTextFile(join(SYSTEMD, "nginx-terrarium.conf")))
      .replace("server 127.0.0.1:4100;", `server 127.0.0.1:${relay.port};`)
      .replace("listen 80;", `listen 127.0.0.1:${port};`)
      .replace("server_name example.com;", "server_name localhost;");
    await Deno.writeTextFile(join(dir, "site.conf"), site);
    await Deno.writeTextFile(
      join(dir, "nginx.conf"),
      `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n` +
        `  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n` +
        `  include ${dir}/site.conf;\n}\n`,
    );
    const nginx = new Deno.Command("nginx", {
      args: ["-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off; master_process off;"],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      const base = `http://127.0.0.1:${port}/terrarium`;
      let token = "";
      for (let i = 0; i < 100 && !token; i++) {
        token = await visitorToken(base).catch(() => "");
        if (!token) await new Promise((r) => setTimeout(r, 50));
      }
      assert(token, "nginx answers");
      const worker = new RecordingSocket(`${base.replace("http", "ws")}/api/worker/updates`, {
        "x-service-token": TEST_SECRETS.SERVICE_TOKEN,
      });
      await worker.waitFor((es) => es.some((e) => e.type === "hello"));
      const visitor = await visitorSocket(base, "proxied", token);
      await postMessage(base, token, "proxied", "Through nginx?");
      await worker.waitFor((es) => es.some((e) => e.type === "chat_activity"));
      const turn = (await workerCall(worker, { type: "claim", workerId: "w" })).result.turn;
      worker.send({ type: "chunk", chatId: "proxied", content: "Yes, ", turnId: turn.id });
      await workerCall(worker, {
        type: "reply",
        chatId: "proxied",
        content: "Yes, through nginx.",
        replyTo: turn.id,
      });
      await visitor.waitFor((es) => es.some((e) => e.type === "message" && e.sender === "Terra"));
      assert(visitor.events.some((e) => e.type === "assistantChunk" && e.content === "Yes, "));
      assertEquals((await chatHistory(base, token, "proxied")).length, 2);
      await Promise.all([visitor.close(), worker.close()]);
    } finally {
      nginx.kill("SIGTERM");
      await nginx.status;
      await nginx.stderr.cancel();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
});
