/**
 * DNS rebinding through IPv4-mapped IPv6 (issue 11, finding 10): an allowlisted name that
 * resolves to `::ffff:127.0.0.1` must not reach the LLM host's loopback services. Deno
 * 2.9's `--deny-net` cannot express mapped ranges (a name resolving to the mapped form gets
 * past `127.0.0.0/8`), so the live-fetch code checks the address itself; this runs that
 * code under exactly the worker's flags, with the name resolving through a private
 * `/etc/hosts` (bind-mounted in a mount namespace of the child only; the machine's file is
 * not touched).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadWorkerConfig } from "../lib/worker/config.ts";
import { workerPermissionFlags } from "../lib/worker/permissions.ts";
import { assert, assertEquals } from "./_assert.ts";
import { spawnDeno } from "./_process.ts";
import { writeWorkerEnv } from "./_worker_process.ts";

const PROBE_TS = fileURLToPath(new URL("./_rebind_probe.ts", import.meta.url));
const CONTENT_DIR = fileURLToPath(new URL("../content", import.meta.url));

/** Runs the command with `hosts` as its /etc/hosts (a private mount namespace). */
function withHosts(hosts: string): string[] {
  return [
    "unshare",
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    'mount --bind "$0" /etc/hosts && exec "$@"',
    hosts,
  ];
}

/** Whether this machine lets us make a private mount namespace (root, unshare, mount). */
function canUnshare(): boolean {
  try {
    const hosts = Deno.makeTempFileSync();
    const { success } = new Deno.Command("unshare", {
      args: withHosts(hosts).slice(1).concat(["true"]),
      stdout: "null",
      stderr: "null",
    }).outputSync();
    Deno.removeSync(hosts);
    return success;
  } catch {
    return false;
  }
}

/** A TCP listener on every address (IPv4 and mapped IPv6) that counts connections and bytes. */
function listener() {
  const server = Deno.listen({ hostname: "::", port: 0 });
  const seen = { connections: 0, bytes: 0 };
  const conns: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of server) {
      seen.connections++;
      conns.push(conn);
      (async () => {
        const buffer = new Uint8Array(4096);
        try {
          for (let n; (n = await conn.read(buffer)) !== null;) seen.bytes += n;
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return {
    port: (server.addr as Deno.NetAddr).port,
    seen,
    async close() {
      server.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await serving;
    },
  };
}

Deno.test({
  name: "a granted name that resolves to ::ffff:127.0.0.1 does not reach loopback",
  ignore: !canUnshare(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "terrarium-rebind-" });
    const loopback = listener();
    try {
      const hosts = join(dir, "hosts");
      await Deno.writeTextFile(hosts, "127.0.0.1 localhost\n::ffff:127.0.0.1 rebind.test\n");
      // A public-facing worker: relay and agent elsewhere, so loopback is denied.
      const envFile = await writeWorkerEnv(dir, {
        API_BASE_URL: "https://relay.example/terrarium",
        SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
        AGENT_API_URL: "http://192.168.1.20:8000/v1",
        LIVE_ALLOWED_HOSTS: `rebind.test:${loopback.port}`,
        CONTENT_DIR,
        ENHANCEMENT_DIR: join(dir, "enhancements"),
      });
      const flags = workerPermissionFlags(loadWorkerConfig(envFile), envFile);
      assert(flags.some((f) => f.startsWith("--deny-net=") && f.includes("127.0.0.0/8")));
      const probe = spawnDeno(
        [
          "run",
          ...flags,
          PROBE_TS,
          `--env-file=${envFile}`,
          `--url=https://rebind.test:${loopback.port}/`,
        ],
        {},
        { wrapper: withHosts(hosts) },
      );
      const line = await probe.waitForLine(/"probe":"rebind"/);
      await probe.status;
      const result = JSON.parse(line);
      assertEquals(result.code, "not_allowed", line);
      assert(result.message.includes("private address (::ffff:127.0.0.1)"), line);
      // The address check connects and closes; not one byte of a request reached loopback.
      assertEquals(loopback.seen.bytes, 0);
    } finally {
      await loopback.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
