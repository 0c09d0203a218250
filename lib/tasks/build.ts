/**
 * `deno task build --worker-env-file=PATH [--relay-env-file=PATH] [--relay-ports=P,P]
 * [--target=T] [--dry-run]`: compiles `terrarium-relay` and `terrarium-worker` into `dist/`,
 * each with the permission flags of its deployment baked in, from the same functions
 * `deno task relay|worker` and the tests use. The worker's grants come from the worker env
 * file given here; `--relay-ports` lets one relay binary listen on each of those ports (two
 * relays on one host on one Redis, `terrarium-relay@PORT`), instead of only the env's `PORT`.
 *
 * `deno compile` needs Deno's runtime base (denort) for the target and downloads it on first
 * use. Where that download fails, the build says which file to fetch elsewhere and to set
 * `DENORT_BIN` to it; with `DENORT_BIN` set, that file is used. `--dry-run` prints the
 * commands only.
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { ConfigError, readEnv } from "../env.ts";
import { parseRelayConfig, RELAY_ENV_NAMES } from "../relay/config.ts";
import { relayPermissionFlags } from "../relay/permissions.ts";
import { loadWorkerConfig } from "../worker/config.ts";
import { workerPermissionFlags } from "../worker/permissions.ts";
import { buildWeb, DEFAULT_WEB_OUT } from "./web_build.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** Where the relay unit keeps its store (`StateDirectory=terrarium-relay`). */
const DEFAULT_KV_PATH = "/var/lib/terrarium-relay/relay.kv";

export interface BuildOptions {
  workerEnvFile: string;
  relayEnvFile?: string;
  /** Ports the relay binary may listen on (several instances on one host); default its `PORT`. */
  relayPorts?: number[];
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
        ...relayPermissionFlags(relayConfig, undefined, { ports: options.relayPorts }),
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
      relayPorts: parsePorts(option(args, "relay-ports")),
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
  const denort = Deno.env.get("DENORT_BIN") || undefined;
  if (denort && !existsSync(denort)) {
    fail(`DENORT_BIN is "${denort}", which does not exist; unset it or point it at denort`);
  }
  await buildWeb();
  for (const { name, args: compileArgs } of commands) {
    const result = await compile(compileArgs, denort);
    if (result.success) {
      // deno-lint-ignore no-console
      console.log(`build: dist/${name}`);
      continue;
    }
    const base = baseBinaryProblem(result.stderr);
    if (base && !denort) {
      const target = option(args, "target") ?? Deno.build.target;
      fail(denortAdvice(target, base));
    }
    // deno-lint-ignore no-console
    console.error(result.stderr.trimEnd());
    fail(`deno compile of ${name} failed (exit ${result.code})`);
  }
}

/** `--relay-ports=4100,4101` as numbers; undefined when not given. */
export function parsePorts(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const ports = value.split(",").map((p) => p.trim());
  for (const port of ports) {
    const n = Number(port);
    if (!/^\d+$/.test(port) || n < 1 || n > 65535) {
      throw new ConfigError([`--relay-ports: "${port}" is not a port (1-65535)`]);
    }
  }
  return ports.map(Number);
}

/** Runs one `deno compile`, with `DENORT_BIN` when given; its stderr is kept for the diagnosis. */
async function compile(compileArgs: string[], denort: string | undefined) {
  // An empty DENORT_BIN would make deno compile look for a file named "": leave it out.
  const { DENORT_BIN: _, ...env } = Deno.env.toObject();
  if (denort) env.DENORT_BIN = denort;
  const output = await new Deno.Command(Deno.execPath(), {
    args: compileArgs,
    clearEnv: true,
    env,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  return {
    success: output.success,
    code: output.code,
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/** The URL `deno compile` fetches the runtime base from, for `target` and this Deno. */
export function denortUrl(target: string, version = Deno.version.deno): string {
  return `https://dl.deno.land/release/v${version}/denort-${target}.zip`;
}

/** Why fetching the base binary failed, from `deno compile`'s stderr; null when it was not that. */
export function baseBinaryProblem(stderr: string): string | null {
  if (!/Setting up base binary|denort-[\w-]+\.zip/.test(stderr)) return null;
  // "Caused by:" then "0: …", "1: …"; the last numbered cause is the most precise.
  const causes = stderr.split("Stack backtrace")[0]!.split("\n")
    .filter((l) => /^\s*\d+: /.test(l)).map((l) => l.replace(/^\s*\d+: /, "").trim());
  const lines = causes.filter(Boolean);
  return lines.at(-1) ?? "the download failed";
}

/** The one sentence for a build that could not fetch its base binary. */
export function denortAdvice(target: string, problem: string): string {
  return `deno compile could not download its runtime base for ${target} (${problem}). ` +
    `On a machine that can, download ${denortUrl(target)}, unzip it (it holds one file, ` +
    `denort), copy that here and run the build again with DENORT_BIN=/path/to/denort`;
}
