/**
 * README "Drive a chat by hand", run as written (issue 15): its three shell blocks are read
 * from README.md, so the test fails when the README drifts. Terminal 1's blocks run in one
 * bash (the test waits between them, as the reader would), terminal 2's wscat runs from
 * npm through Deno beside it. Only the relay's port is changed, to one that is free here.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./_assert.ts";
import { type Json } from "./_clients.ts";
import { startRelay } from "./_relay_process.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The ```sh blocks of the README section `heading`, in order. */
async function readmeBlocks(heading: string): Promise<string[]> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const start = readme.indexOf(`${heading}\n`);
  assert(start >= 0, `README has "${heading}"`);
  const rest = readme.slice(start + heading.length);
  const section = rest.slice(0, rest.search(/\n##? /));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** A bash child with collected stdout lines (stderr kept apart). */
function bash(script: string, cwd: string, keepStdinOpen = false) {
  const child = new Deno.Command("bash", {
    args: ["-c", script],
    cwd,
    env: { PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}`, NO_COLOR: "1" },
    stdin: keepStdinOpen ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out: string[] = [];
  const err: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>, into: string[]) => {
    let buffered = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      into.push(...parts);
    }
    if (buffered) into.push(buffered);
  };
  const done = Promise.all([collect(child.stdout, out), collect(child.stderr, err)]);
  return { child, out, err, done };
}

async function waitUntil(predicate: () => boolean | Promise<boolean>, what: string) {
  for (let i = 0; i < 300; i++) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test("README 'Drive a chat by hand' works pasted as written: curl answers one line each, wscat shows the chat", async () => {
  const blocks = await readmeBlocks("### Drive a chat by hand");
  assertEquals(blocks.length, 3, "terminal 1, terminal 2, terminal 1 again");
  // Under the checkout, so `deno run npm:wscat@…` resolves through deno.json's lock and cache.
  await Deno.mkdir(join(ROOT, "test-artifacts"), { recursive: true });
  const dir = await Deno.makeTempDir({ dir: join(ROOT, "test-artifacts"), prefix: "by-hand-" });
  const relay = await startRelay({}, { dir });
  assertEquals(relay.envFile, join(dir, "relay.env"), "the README reads ./relay.env");
  const [first, socket, second] = blocks.map((b) => b.replaceAll("4100", String(relay.port)));
  let watcher: ReturnType<typeof bash> | null = null;
  try {
    // Terminal 1, then (once terminal 2 shows `ready`) terminal 1 again.
    const terminal1 = bash(
      `${first}\n: > .first-done\n` +
        `for i in $(seq 300); do [ -f .socket-ready ] && break; sleep 0.1; done\n${second}`,
      dir,
    );
    await waitUntil(() => exists(join(dir, ".first-done")), "the first block");
    const token = (await Deno.readTextFile(join(dir, "visitor.token"))).trim();
    assert(/^[\w.-]{20,}$/.test(token), `a session token in visitor.token: ${token.slice(0, 40)}`);

    watcher = bash(socket!, dir, true);
    const w = watcher;
    await waitUntil(() => w.out.some((l) => l.includes('"type":"ready"')), "wscat's ready");
    await Deno.writeTextFile(join(dir, ".socket-ready"), "");

    const status = await terminal1.child.status;
    await terminal1.done;
    assertEquals(status.code, 0, terminal1.err.join("\n"));
    // `curl -sS -w '\n'`: one JSON answer per line, none run together.
    const answers = terminal1.out.filter((l) => l.trim()).map((l) => JSON.parse(l) as Json);
    assertEquals(answers.length, 6, terminal1.out.join("\n"));
    const [asked, open, claim, chunk, reply, history] = answers;
    assertEquals([asked.sender, asked.content], ["Visitor", "Hello Terra"]);
    assert(open.chatIds.includes("demo-1"), JSON.stringify(open));
    assert(claim.turn?.chatId === "demo-1", JSON.stringify(claim));
    assert(!("error" in chunk), JSON.stringify(chunk));
    assertEquals([reply.sender, reply.content], ["Terra", "Hi there!"]);
    assertEquals(history.map((m: Json) => m.sender), ["Visitor", "Terra"]);

    // Terminal 2 saw the whole chat live.
    await waitUntil(
      () => w.out.some((l) => l.includes('"sender":"Terra"')),
      "Terra's reply in wscat",
    );
    const events = w.out.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Json);
    const types = new Set(events.map((e) => e.type));
    for (const type of ["ready", "message", "workerState", "assistantChunk"]) {
      assert(types.has(type), `wscat shows ${type}: ${w.out.join("\n")}`);
    }
    assert(events.every((e) => e.type === "ready" || typeof e.seq === "number"), "each has seq");
  } finally {
    if (watcher) {
      try {
        watcher.child.kill("SIGTERM");
      } catch { /* gone */ }
      await watcher.child.stdin.close().catch(() => {});
      await watcher.child.status;
      await watcher.done;
    }
    await relay.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
