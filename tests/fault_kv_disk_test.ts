/**
 * The relay's KV file on a disk that will not take writes (issue 7): a store that cannot
 * open stops the relay once with one clear line (exit 78, which the unit does not restart),
 * and a disk that fills up while the relay runs gets visitors and workers a 503
 * `store_unavailable`, loses nothing acknowledged and leaves the relay up.
 *
 * We run as root, so a chmod'ed directory would not stop us: a read-only directory is made
 * immutable with `chattr +i` (chmod 0555 as non-root), the full disk is `/dev/full`, and a
 * disk that fills up at run time is a file size limit (`ulimit -f`, with SIGXFSZ ignored so
 * a write past it fails with EFBIG as on a full disk instead of killing the process).
 */
import { join } from "node:path";
import { runArgs } from "../lib/launch.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  chatHistory,
  type Json,
  postMessage,
  request,
  visitorSocket,
  visitorToken,
  workerCall,
  workerSocket,
} from "./_clients.ts";
import { spawnDeno } from "./_process.ts";
import { startRelay, writeRelayEnv } from "./_relay_process.ts";

const IS_ROOT = Deno.uid() === 0;

/** Makes `dir` read-only for this process (root included); false when the disk cannot. */
async function makeReadOnly(dir: string, readOnly: boolean): Promise<boolean> {
  const command = IS_ROOT
    ? new Deno.Command("chattr", { args: [readOnly ? "+i" : "-i", dir], stderr: "null" })
    : null;
  if (!command) {
    await Deno.chmod(dir, readOnly ? 0o555 : 0o755);
    return true;
  }
  try {
    return (await command.output()).success;
  } catch {
    return false; // no chattr here
  }
}

/** Runs deno with a file size limit of `kib` KiB, SIGXFSZ ignored so writes fail with EFBIG. */
function fileSizeLimit(kib: number): string[] {
  return ["bash", "-c", `trap '' XFSZ; ulimit -f ${kib}; exec "$@"`, "fsize-limited"];
}

/** Runs the relay with `env` until it exits (bounded); returns its exit code and output. */
async function runRelayToExit(
  dir: string,
  env: Record<string, string>,
  wrapper?: string[],
): Promise<{ code: number; lines: string[] }> {
  const { envFile } = await writeRelayEnv(env, { dir });
  // `--cached-only`: Deno 2.9 (default minimum dependency age) fetches the packument of each
  // npm package it loads whose `registry.json` is not cached yet, and prints "Download …".
  // Under `ulimit -f 0` it can never store it, so on a fresh cache every run fetched it again
  // and the one line became two. The test runner has installed every package of deno.json
  // already; the relay needs nothing from the network, and here must not try.
  // The child looks in the runner's cache (spawnDeno passes only PATH and HOME otherwise).
  const denoDir = Deno.env.get("DENO_DIR");
  const [run, ...rest] = runArgs("relay", envFile);
  const child = spawnDeno([run!, "--cached-only", ...rest], denoDir ? { DENO_DIR: denoDir } : {}, {
    wrapper,
  });
  const timer = setTimeout(() => child.kill(), 20_000);
  const status = await child.status;
  clearTimeout(timer);
  return { code: status.code, lines: child.lines.filter((l) => l.trim() !== "") };
}

Deno.test("a KV store that cannot open stops the relay once, with one line naming the path and the cause", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-kvfault-" });
  const readOnlyDir = join(dir, "read-only");
  await Deno.mkdir(readOnlyDir);
  await Deno.writeTextFile(join(dir, "a-file"), "not a directory\n");
  await Deno.mkdir(join(dir, "a-directory.kv"));
  const readOnly = await makeReadOnly(readOnlyDir, true);
  try {
    const cases: [string, string, RegExp, string[]?][] = [
      [
        "a full disk",
        join(dir, "full", "relay.kv"),
        /disk I\/O error|disk is full/,
        fileSizeLimit(0),
      ],
      ["a path through a file", join(dir, "a-file", "relay.kv"), /a-file" is not a directory/],
      ["a path that is a directory", join(dir, "a-directory.kv"), /unable to open database/],
    ];
    if (readOnly) {
      cases.push([
        "a read-only directory",
        join(readOnlyDir, "relay.kv"),
        /unable to open database/,
      ]);
    }
    for (const [what, kvPath, cause, wrapper] of cases) {
      const { code, lines } = await runRelayToExit(dir, { KV_PATH: kvPath }, wrapper);
      const output = lines.join("\n");
      assertEquals(code, 78, `${what}: exit code\n${output}`);
      assertEquals(lines.length, 1, `${what}: one line, no stack trace\n${output}`);
      assert(
        lines[0]!.startsWith(`terrarium-relay: Cannot open the KV store "${kvPath}": `),
        `${what}: names the path\n${output}`,
      );
      assert(cause.test(lines[0]!), `${what}: names the cause\n${output}`);
    }
    // 78 is the exit status the unit does not restart: one clear failure, no crash loop.
    const unit = await Deno.readTextFile(
      new URL("../systemd/terrarium-relay.service", import.meta.url),
    );
    assert(/^RestartPreventExitStatus=78$/m.test(unit), "the unit does not restart on 78");
  } finally {
    if (readOnly) await makeReadOnly(readOnlyDir, false);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a disk that fills up while the relay runs: 503 store_unavailable, nothing acknowledged lost, the relay stays up", async () => {
  const relay = await startRelay({
    RATE_LIMIT_MAX_PER_IP: "100000",
    RATE_LIMIT_MAX_PER_CHAT: "100000",
    MAX_PENDING_TURNS_PER_CHAT: "100",
  }, { wrapper: fileSizeLimit(1024) });
  const sockets: { close(): Promise<void> }[] = [];
  try {
    const token = await visitorToken(relay.url);
    const chats = Array.from({ length: 6 }, (_, i) => `full-${i}`);
    const watchers = await Promise.all(chats.map((c) => visitorSocket(relay.url, c, token)));
    sockets.push(...watchers);
    const worker = await workerSocket(relay.url, "w-before");
    sockets.push(worker);

    // Post big messages until the store refuses three in a row (bounded by count).
    const acknowledged = new Map<string, Json[]>(chats.map((c) => [c, []]));
    const refusals: { status: number; body: Json; retryAfter: string | null }[] = [];
    let inARow = 0;
    for (let i = 0; i < 400 && inARow < 3; i++) {
      const chatId = chats[i % chats.length]!;
      const res = await postMessage(relay.url, token, chatId, `${i} ${"x".repeat(3990)}`);
      if (res.status === 201) {
        acknowledged.get(chatId)!.push(res.body);
        inARow = 0;
      } else {
        refusals.push({
          status: res.status,
          body: res.body,
          retryAfter: res.headers.get("retry-after"),
        });
        inARow++;
      }
    }
    const stored = [...acknowledged.values()].flat();
    assert(stored.length > 0, "the store took writes before it filled up");
    assert(inARow === 3, `the store filled up within 400 messages (${stored.length} stored)`);
    for (const refusal of refusals) {
      assertEquals(refusal.status, 503, JSON.stringify(refusal.body));
      assertEquals(Object.keys(refusal.body).sort(), ["code", "error"]);
      assertEquals(refusal.body.code, "store_unavailable");
      assert(Number(refusal.retryAfter) > 0, "503 says when to retry");
    }

    // The relay is up and reads still work: the history holds exactly what was acknowledged,
    // and the visitors were shown exactly that.
    assertEquals((await request(`${relay.url}/healthz`)).status, 200);
    for (const [i, chatId] of chats.entries()) {
      const history = await chatHistory(relay.url, token, chatId);
      assertEquals(history, acknowledged.get(chatId), `${chatId}: history = acknowledged`);
      const seen = watchers[i]!.events.filter((e) => e.type === "message").map((e) => e.id);
      assertEquals(seen, acknowledged.get(chatId)!.map((m) => m.id), `${chatId}: shown`);
    }

    // A worker that connects now (its heartbeat write fails) finds the relay up; a claim,
    // which must write its lease, is refused with the same clear code over the socket.
    const late = await workerSocket(relay.url, "w-after-full");
    sockets.push(late);
    const claim = await workerCall(late, { type: "claim", workerId: "w-after-full" });
    assertEquals([claim.ok, claim.code], [false, "store_unavailable"], JSON.stringify(claim));
    const claimHttp = await request(`${relay.url}/api/worker/turns/claim`, {
      body: { workerId: "w-after-full" },
      headers: { "x-service-token": relay.env.SERVICE_TOKEN! },
    });
    assertEquals([claimHttp.status, claimHttp.body.code], [503, "store_unavailable"]);
    assertEquals((await request(`${relay.url}/healthz`)).status, 200);

    let exited = false;
    relay.status.then(() => exited = true);
    await new Promise((r) => setTimeout(r, 200));
    assert(!exited, `the relay is still running:\n${relay.lines.slice(-20).join("\n")}`);
    assert(
      !relay.lines.some((l) => /uncaught|panicked/i.test(l)),
      relay.lines.slice(-20).join("\n"),
    );
  } finally {
    await Promise.all(sockets.map((s) => s.close()));
    await relay.kill();
    await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
  }
});
