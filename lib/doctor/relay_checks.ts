/**
 * The relay's preflight: its config loads (every bad variable named, secrets judged by the
 * same rules the relay starts with), its KV directory takes writes and an existing store
 * opens, its port is free, and the page it serves is there.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConfigError } from "../env.ts";
import { isRemoteKv, loadRelayConfig, type RelayConfig } from "../relay/config.ts";
import { type Check, fail, ok, skip, warn } from "./check.ts";

/** The relay's checks for `envFile`; when the config does not load, one failing line per problem. */
export function relayChecks(envFile: string | undefined): Check[] {
  const where = envFile ?? "the environment";
  let config: RelayConfig | null = null;
  let problems: string[] = [];
  try {
    config = loadRelayConfig(envFile);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems = error.problems;
  }
  if (!config) {
    return problems.map((problem) => ({
      name: "config",
      run: () => fail(problem, `edit ${where}`),
    }));
  }
  const c = config;
  return [
    { name: "config", run: () => ok(`${where} loads`) },
    {
      name: "secrets",
      run: () =>
        c.demoMode
          ? warn(
            "DEMO_MODE=true accepts any secret",
            `remove DEMO_MODE from ${where} before the relay is reachable from outside`,
          )
          : ok("every secret passes the checks the relay starts with"),
    },
    { name: "KV store", run: () => checkKv(c.kvPath) },
    { name: "port", run: () => checkPort(c.hostname, c.port) },
    {
      name: "page",
      run: () =>
        c.webDir === ""
          ? skip("WEB_DIR is empty: the relay serves no page")
          : existsSync(join(c.webDir, "index.html"))
          ? ok(`${join(c.webDir, "index.html")} is there`)
          : fail(
            `no index.html in ${c.webDir}`,
            "run `deno task web` (or `deno task build`), or set WEB_DIR to the built page",
          ),
    },
  ];
}

async function checkKv(kvPath: string) {
  if (kvPath === ":memory:") return warn("KV_PATH=:memory: keeps nothing", "set KV_PATH to a file");
  if (isRemoteKv(kvPath)) return skip(`${kvPath} is a remote store (not checked)`);
  const dir = dirname(kvPath);
  try {
    await Deno.mkdir(dir, { recursive: true });
    const probe = join(dir, `.doctor-${crypto.randomUUID()}`);
    await Deno.writeTextFile(probe, "x");
    await Deno.remove(probe);
  } catch (error) {
    return fail(
      `${dir} does not take writes (${(error as Error).message})`,
      "set KV_PATH to a file in a directory the relay's user can write (under systemd: its StateDirectory)",
    );
  }
  if (!existsSync(kvPath)) return ok(`${dir} is writable; the store will be created at start`);
  try {
    const kv = await Deno.openKv(kvPath);
    try {
      await kv.get(["doctor"]);
    } finally {
      kv.close();
    }
    return ok(`${kvPath} opens and reads`);
  } catch (error) {
    return fail(
      `${kvPath} cannot be read (${(error as Error).message})`,
      "restore it from a backup, or move it away to start with an empty store",
    );
  }
}

async function checkPort(hostname: string, port: number) {
  try {
    const listener = Deno.listen({ hostname, port });
    listener.close();
    return ok(`${hostname}:${port} is free`);
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) {
      return fail(
        `cannot listen on ${hostname}:${port} (${(error as Error).message})`,
        "fix HOSTNAME and PORT",
      );
    }
  }
  const running = await fetch(`http://${hostname}:${port}/healthz`, {
    signal: AbortSignal.timeout(3_000),
  }).then(async (r) => r.ok && (await r.text()).trim() === "ok").catch(() => false);
  return running
    ? warn(
      `${hostname}:${port} is in use by a running relay`,
      "fine if it is this one; otherwise stop it or choose another PORT",
    )
    : fail(`${hostname}:${port} is in use by another program`, "stop it or choose another PORT");
}
