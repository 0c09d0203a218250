/**
 * `deno task build --worker-env-file=PATH [--relay-env-file=PATH] [--target=T] [--dry-run]`:
 * compiles `terrarium-relay` and `terrarium-worker` into `dist/`, each with the permission
 * flags of its deployment baked in, from the same functions `deno task relay|worker` and
 * the tests use. The worker's grants come from the worker env file given here.
 *
 * `deno compile` needs Deno's runtime base (denort) for the target; where it cannot be
 * downloaded, `DENORT_BIN` must point at it. `--dry-run` prints the commands only.
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { ConfigError, readEnv } from "./env.ts";
import { parseRelayConfig, RELAY_ENV_NAMES } from "./relay/config.ts";
import { relayPermissionFlags } from "./relay/permissions.ts";
import { loadWorkerConfig } from "./worker/config.ts";
import { workerPermissionFlags } from "./worker/permissions.ts";
import { buildWeb, DEFAULT_WEB_OUT } from "./web_build.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Where the relay unit keeps its store (`StateDirectory=terrarium-relay`). */
const DEFAULT_KV_PATH = "/var/lib/terrarium-relay/relay.kv";

export interface BuildOptions {
  workerEnvFile: string;
  relayEnvFile?: string;
  target?: string;
  outDir?: string;
}

function option(args: string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

/** The two `deno compile` argument lists the build runs. */
export function compileCommands(options: BuildOptions): { name: string; args: string[] }[] {
  const outDir = options.outDir ?? join(ROOT, "dist");
  // The relay's flags need only where it listens and keeps its store, not its secrets.
  const relayRaw = readEnv(RELAY_ENV_NAMES, options.relayEnvFile);
  const relayConfig = parseRelayConfig({
    ...relayRaw,
    KV_PATH: relayRaw.KV_PATH ?? DEFAULT_KV_PATH,
    // The page is embedded (`--include`); the relay reads it at the path it was built at.
    WEB_DIR: relayRaw.WEB_DIR ?? DEFAULT_WEB_OUT,
    DEMO_MODE: "true",
  });
  const target = options.target ? [`--target=${options.target}`] : [];
  return [
    {
      name: "terrarium-relay",
      args: [
        "compile",
        ...relayPermissionFlags(relayConfig),
        ...target,
        "--include",
        DEFAULT_WEB_OUT,
        "--output",
        join(outDir, "terrarium-relay"),
        join(ROOT, "relay.ts"),
      ],
    },
    {
      name: "terrarium-worker",
      args: [
        "compile",
        ...workerPermissionFlags(loadWorkerConfig(options.workerEnvFile)),
        ...target,
        "--output",
        join(outDir, "terrarium-worker"),
        join(ROOT, "worker.ts"),
      ],
    },
  ];
}

if (import.meta.main) {
  const args = Deno.args;
  const workerEnvFile = option(args, "worker-env-file");
  const fail = (message: string): never => {
    // deno-lint-ignore no-console
    console.error(`build: ${message}`);
    Deno.exit(1);
  };
  if (!workerEnvFile) {
    fail(
      "give the worker's env file with --worker-env-file=PATH: its hosts become the worker's grants",
    );
  }
  let commands: { name: string; args: string[] }[] = [];
  try {
    commands = compileCommands({
      workerEnvFile: workerEnvFile!,
      relayEnvFile: option(args, "relay-env-file"),
      target: option(args, "target"),
    });
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  if (args.includes("--dry-run")) {
    // deno-lint-ignore no-console
    for (const c of commands) console.log(["deno", ...c.args].join(" "));
    Deno.exit(0);
  }
  const denort = Deno.env.get("DENORT_BIN");
  if (!denort || !existsSync(denort)) {
    fail(
      "deno compile needs Deno's runtime base binary, which this machine cannot download: set DENORT_BIN to the denort executable of Deno 2.9.6 for the target (from denort-<target>.zip of that release).",
    );
  }
  await buildWeb();
  for (const { name, args: compileArgs } of commands) {
    const status = await new Deno.Command(Deno.execPath(), {
      args: compileArgs,
      env: { DENORT_BIN: denort! },
    })
      .spawn().status;
    if (!status.success) fail(`deno compile of ${name} failed (exit ${status.code})`);
    // deno-lint-ignore no-console
    console.log(`build: dist/${name}`);
  }
}
