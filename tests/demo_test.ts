/** `deno task demo`: relay, model and worker come up, answer one chat, and stop on Ctrl-C. */
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./_assert.ts";
import { chatHistory, postMessage, visitorSocket, visitorToken } from "./_clients.ts";
import { ensurePageBuilt } from "./_browser.ts";
import { spawnDeno } from "./_process.ts";
import { freePort } from "./_relay_process.ts";

const DEMO_TS = fileURLToPath(new URL("../lib/tasks/demo.ts", import.meta.url));

Deno.test("the demo answers a chat with a tool and stops all its processes on SIGTERM", async () => {
  await ensurePageBuilt();
  const dir = await Deno.makeTempDir({ prefix: "terrarium-demo-" });
  const port = freePort();
  const modelPort = freePort();
  const demo = spawnDeno([
    "run",
    "--allow-read",
    `--allow-write=${dir}`,
    "--allow-env",
    "--allow-run",
    DEMO_TS,
    `--port=${port}`,
    `--model-port=${modelPort}`,
    `--kv-dir=${dir}`,
  ]);
  try {
    const banner = await demo.waitForLine("terrarium demo ready", 60_000);
    assert(
      banner.includes(`http://127.0.0.1:${port}/`) && banner.includes("access code: terra-demo"),
    );
    const base = `http://127.0.0.1:${port}`;
    const page = await fetch(`${base}/`);
    assert((await page.text()).includes("<title>Chat with Terra</title>"), "the URL is the page");
    const token = await visitorToken(base, "terra-demo");
    const visitor = await visitorSocket(base, "demo-chat", token);
    await postMessage(base, token, "demo-chat", "What does Morgan run at home?");
    await visitor.waitFor(
      (es) => es.some((e) => e.type === "message" && e.sender === "Terra"),
      30_000,
      "reply",
    );
    const tool = visitor.events.filter((e) => e.type === "assistantChunk" && e.kind === "tool");
    assert(
      tool.some((e) => e.content.startsWith("Searching the site")),
      "the demo model used a tool",
    );
    const history = await chatHistory(base, token, "demo-chat");
    assert(history[1].content.includes("modest hardware"), history[1].content);
    await visitor.close();

    const code = await demo.stop(20_000);
    assertEquals(code, 0);
    for (const p of [port, modelPort]) {
      const refused = await Deno.connect({ hostname: "127.0.0.1", port: p }).then(
        (c) => (c.close(), false),
        () => true,
      );
      assert(refused, `port ${p} is free again`);
    }
  } finally {
    await demo.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
