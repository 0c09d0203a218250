/**
 * A KV file that cannot be read (issue 11, finding 8): real stores damaged on disk —
 * truncated, pages overwritten with garbage, a foreign header, a text file, zero bytes, a
 * directory — stop the real relay process with one line naming the path and the cause and
 * exit 78 (which the unit does not restart): no Rust panic, no silent empty start, and the
 * damaged file is left exactly as it was for the operator to restore or inspect.
 */
import { join } from "node:path";
import { runArgs } from "../lib/launch.ts";
import { assert, assertEquals } from "./_assert.ts";
import { request } from "./_clients.ts";
import { spawnDeno } from "./_process.ts";
import { startRelay, writeRelayEnv } from "./_relay_process.ts";

const PAGE = 4096;

/** Writes a real Deno KV store of a few hundred pages at `path`. */
async function writeStore(path: string): Promise<void> {
  const kv = await Deno.openKv(path);
  try {
    for (let i = 0; i < 300; i++) {
      await kv.set(["chat", `c${i}`], { text: `message ${i} `.repeat(150), i });
    }
  } finally {
    kv.close();
  }
}

async function overwrite(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { write: true });
  try {
    await file.seek(offset, Deno.SeekMode.Start);
    await file.write(bytes);
  } finally {
    file.close();
  }
}

/** Garbage that is the same on every run, so a failure can be replayed. */
function garbage(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = 0x2545f491;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

async function digest(path: string): Promise<string> {
  try {
    const hash = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
    return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
  } catch (error) {
    if (error instanceof Deno.errors.IsADirectory) return "directory";
    throw error;
  }
}

/** Runs the relay on `kvPath` until it exits (bounded); its exit code and output lines. */
async function runRelayToExit(dir: string, kvPath: string) {
  const { envFile } = await writeRelayEnv({ KV_PATH: kvPath }, { dir });
  const child = spawnDeno(runArgs("relay", envFile));
  const timer = setTimeout(() => child.kill(), 20_000);
  const status = await child.status;
  clearTimeout(timer);
  return { code: status.code, lines: child.lines.filter((l) => l.trim() !== "") };
}

Deno.test("a damaged, foreign or empty KV file stops the relay with one line and exit 78", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-kvcorrupt-" });
  try {
    const good = join(dir, "good.kv");
    await writeStore(good);
    const size = (await Deno.stat(good)).size;
    assert(size > 40 * PAGE, `the store spans many pages (${size} bytes)`);

    const cases: { what: string; make: (path: string) => Promise<void>; cause: RegExp }[] = [
      {
        what: "truncated to half",
        make: async (path) => {
          await Deno.copyFile(good, path);
          await Deno.truncate(path, Math.floor(size / PAGE / 2) * PAGE);
        },
        cause: /the store is damaged \(.*malformed.*\); restore it from a backup$/,
      },
      {
        what: "pages overwritten with garbage",
        make: async (path) => {
          await Deno.copyFile(good, path);
          await overwrite(path, 20 * PAGE, garbage(5 * PAGE));
        },
        cause: /the store is damaged \(SQLite integrity check: .+\); restore it from a backup$/,
      },
      {
        what: "a garbage header",
        make: async (path) => {
          await Deno.copyFile(good, path);
          await overwrite(path, 0, garbage(100));
        },
        cause: /it is not a Deno KV \(SQLite\) file$/,
      },
      {
        what: "a text file",
        make: (path) => Deno.writeTextFile(path, "CHAT_PASSWORD=not a database\n"),
        cause: /it is not a Deno KV \(SQLite\) file$/,
      },
      {
        what: "zero length",
        make: (path) => Deno.writeFile(path, new Uint8Array()),
        cause: /the file is empty \(0 bytes\).*remove it to start a new, empty store$/,
      },
      {
        what: "a directory",
        make: (path) => Deno.mkdir(path),
        cause: /it is a directory/,
      },
    ];
    for (const [i, { what, make, cause }] of cases.entries()) {
      const kvPath = join(dir, `case-${i}`, "relay.kv");
      await Deno.mkdir(join(dir, `case-${i}`));
      await make(kvPath);
      const before = await digest(kvPath);
      const { code, lines } = await runRelayToExit(dir, kvPath);
      const output = lines.join("\n");
      assertEquals(code, 78, `${what}: exit code\n${output}`);
      assertEquals(lines.length, 1, `${what}: one line, no panic or stack trace\n${output}`);
      const prefix = `terrarium-relay: Cannot open the KV store "${kvPath}": `;
      assert(lines[0]!.startsWith(prefix), `${what}: names the path\n${output}`);
      assert(cause.test(lines[0]!), `${what}: names the cause\n${output}`);
      assertEquals(await digest(kvPath), before, `${what}: the file is left as it was`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("an intact store, and a new path, still start the relay with the store's data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-kvcorrupt-" });
  const kvPath = join(dir, "kv", "relay.kv");
  try {
    await Deno.mkdir(join(dir, "kv"));
    await writeStore(kvPath);
    const relay = await startRelay({}, { dir });
    try {
      assertEquals((await request(`${relay.url}/healthz`)).status, 200);
    } finally {
      assertEquals(await relay.stop(), 0);
    }
    // The relay's own check left the store intact: the data is all there.
    const kv = await Deno.openKv(kvPath);
    try {
      let count = 0;
      for await (const _ of kv.list({ prefix: ["chat"] })) count++;
      assertEquals(count, 300);
    } finally {
      kv.close();
    }
    const fresh = await startRelay({ KV_PATH: join(dir, "new", "relay.kv") }, { dir });
    await fresh.stop();
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
