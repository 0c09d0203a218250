/**
 * `deno task doctor` against real setups (issue 15): a good one (a real relay process, our
 * model server, a content dir of the operator's own) passes every check; a wrong token, a
 * model server that is down and a content dir without its prompt files each fail the
 * check that names them, with the fix, and the doctor exits 1.
 */
import { cp } from "node:fs/promises";
import { join } from "node:path";
import { startModelServer } from "../lib/demo_model/model_server.ts";
import { assert, assertEquals } from "./_assert.ts";
import { spawnDeno } from "./_process.ts";
import { freePort, withRelay, writeRelayEnv } from "./_relay_process.ts";
import { CONTENT_DIR, workerEnv, writeWorkerEnv } from "./_worker_process.ts";

const DOCTOR = new URL("../lib/doctor/main.ts", import.meta.url).pathname;
const FLAGS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  "--unstable-kv",
];

/** The doctor task as deno.json runs it; its exit code and lines. */
async function doctor(part: string, envFile: string) {
  const tasks = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  for (const flag of FLAGS) {
    assert(String(tasks.tasks.doctor).includes(flag), `deno task doctor passes ${flag}`);
  }
  const child = spawnDeno(["run", ...FLAGS, DOCTOR, part, `--env-file=${envFile}`]);
  const timer = setTimeout(() => child.kill(), 60_000);
  const status = await child.status;
  clearTimeout(timer);
  return { code: status.code, lines: child.lines.filter((l) => l.trim() && !/Download/.test(l)) };
}

/** `bytes` random bytes as hex: a well-formed token the relay does not know. */
function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The line of check `name`. */
function line(lines: string[], name: string): string {
  return lines.find((l) => new RegExp(`^\\S+\\s+${name}: `).test(l)) ?? `(no "${name}" line)`;
}

/** A copy of the sample content with a persona of the operator's own. */
async function ownContent(dir: string): Promise<string> {
  const content = join(dir, "content");
  await cp(CONTENT_DIR, content, { recursive: true });
  await Deno.writeTextFile(
    join(content, "persona.md"),
    "You are Terra, the assistant on Robin Tester's website. Be brief.\n",
  );
  return content;
}

Deno.test("doctor relay: a good env file passes every check, one line each", async () => {
  const { dir, envFile } = await writeRelayEnv({ PORT: String(freePort()) });
  try {
    const { code, lines } = await doctor("relay", envFile);
    assertEquals(code, 0, lines.join("\n"));
    for (const name of ["config", "secrets", "KV store", "port", "page"]) {
      assert(line(lines, name).startsWith("ok "), lines.join("\n"));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doctor relay: a bad variable fails the config check, naming it", async () => {
  const { dir, envFile } = await writeRelayEnv({ PORT: "not-a-port" });
  try {
    const { code, lines } = await doctor("relay", envFile);
    assertEquals(code, 1, lines.join("\n"));
    assert(/^FAIL\s+config: .*PORT/.test(line(lines, "config")), lines.join("\n"));
    assert(line(lines, "config").includes(`→ edit ${envFile}`), lines.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doctor worker: passes against a real relay and model, and names each broken part", async () => {
  await withRelay({}, async (relay) => {
    const model = startModelServer();
    let modelOpen = true;
    // A stand-in for SearxNG's JSON API.
    const searx = new AbortController();
    const search = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: searx.signal, onListen: () => {} },
      (req) =>
        new URL(req.url).searchParams.get("format") === "json"
          ? Response.json({ results: [{ title: "t", url: "https://example.com/", content: "c" }] })
          : new Response("html", { status: 403 }),
    );
    try {
      const content = await ownContent(relay.dir);
      const good = workerEnv(relay.url, model.url, relay.dir, {
        CONTENT_DIR: content,
        SEARCH_API_URL: `http://127.0.0.1:${search.addr.port}/search`,
      });
      const goodRun = await doctor("worker", await writeWorkerEnv(relay.dir, good));
      const all = goodRun.lines.join("\n");
      assertEquals(goodRun.code, 0, all);
      for (
        const name of [
          "config",
          "grants",
          "relay reachable",
          "token accepted",
          "agent reachable",
          "model answers",
          "tools",
          "content",
          "cached site",
        ]
      ) {
        assert(line(goodRun.lines, name).startsWith("ok "), `${name}:\n${all}`);
      }
      assert(/^ok\s+SearxNG: .* answered with 1 result$/.test(line(goodRun.lines, "SearxNG")), all);
      assert(line(goodRun.lines, "live hosts").startsWith("skip"), all);

      // A token the relay refuses, and a live-fetch host that is not public.
      const wrongToken = randomHex(24);
      const wrongEnv = await writeWorkerEnv(relay.dir, {
        ...good,
        SERVICE_TOKEN: wrongToken,
        LIVE_ALLOWED_HOSTS: "localhost",
      });
      const refused = await doctor("worker", wrongEnv);
      assertEquals(refused.code, 1, refused.lines.join("\n"));
      const token = line(refused.lines, "token accepted");
      assert(token.startsWith("FAIL") && token.includes("401"), token);
      assert(token.includes(`set SERVICE_TOKEN in ${wrongEnv}`), token);
      assert(!refused.lines.join("\n").includes(wrongToken), "the token is never printed");
      const live = line(refused.lines, "live hosts");
      assert(/^FAIL\s+live hosts: localhost resolves to \S+ \(loopback\)/.test(live), live);

      // Content without its prompt and profile files.
      const empty = join(relay.dir, "empty-content");
      await Deno.mkdir(join(empty, "site"), { recursive: true });
      await Deno.writeTextFile(join(empty, "site", "pages.json"), "[]\n");
      const bare = await doctor(
        "worker",
        await writeWorkerEnv(relay.dir, { ...good, CONTENT_DIR: empty }),
      );
      assertEquals(bare.code, 1, bare.lines.join("\n"));
      const contentLine = line(bare.lines, "content");
      assert(
        /^FAIL.*lacks persona\.md, system_prompt\.md, profile\.md/.test(contentLine),
        contentLine,
      );
      assert(contentLine.includes("refresh-content"), contentLine);

      // The model server is down.
      await model.close();
      modelOpen = false;
      const down = await doctor("worker", await writeWorkerEnv(relay.dir, good));
      assertEquals(down.code, 1, down.lines.join("\n"));
      for (const name of ["agent reachable", "model answers"]) {
        const l = line(down.lines, name);
        assert(l.startsWith("FAIL") && l.includes("connection refused"), l);
        assert(l.includes("→ start the model server"), l);
      }
      assert(line(down.lines, "token accepted").startsWith("ok "), "the relay part still passes");
    } finally {
      if (modelOpen) await model.close();
      searx.abort();
      await search.finished;
    }
  });
});
