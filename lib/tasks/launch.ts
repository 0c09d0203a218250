/**
 * `deno task relay|worker|refresh-content [--env-file=PATH]`: runs an entry point under exactly the permission
 * flags the build bakes into its binary, computed from the same config (SPEC §2, §5).
 * The launcher itself reads env and runs `deno`; the child gets only its own grants.
 */
import { fileURLToPath } from "node:url";
import { ConfigError, envFileArg } from "../env.ts";
import { loadRelayConfig } from "../relay/config.ts";
import { relayPermissionFlags } from "../relay/permissions.ts";
import { loadRefreshConfig, refreshPermissionFlags } from "../refresh/config.ts";
import { loadWorkerConfig } from "../worker/config.ts";
import { workerPermissionFlags } from "../worker/permissions.ts";

/** Entry points the launcher knows, with the function that derives their flags. */
const ENTRIES: Record<string, { script: string; flags: (envFile?: string) => string[] }> = {
  relay: {
    script: fileURLToPath(new URL("../../relay.ts", import.meta.url)),
    flags: (envFile) => relayPermissionFlags(loadRelayConfig(envFile), envFile),
  },
  worker: {
    script: fileURLToPath(new URL("../../worker.ts", import.meta.url)),
    flags: (envFile) => workerPermissionFlags(loadWorkerConfig(envFile), envFile),
  },
  "refresh-content": {
    script: fileURLToPath(new URL("../refresh/main.ts", import.meta.url)),
    flags: (envFile) => refreshPermissionFlags(loadRefreshConfig(envFile), envFile),
  },
};

/** The full `deno run` argument list for `name` (also used by the tests). */
export function runArgs(name: string, envFile?: string, extra: string[] = []): string[] {
  const entry = ENTRIES[name];
  if (!entry) {
    throw new RangeError(
      `Unknown entry point "${name}"; expected ${Object.keys(ENTRIES).join(" or ")}`,
    );
  }
  const envArgs = envFile ? [`--env-file=${envFile}`] : [];
  return ["run", ...entry.flags(envFile), entry.script, ...envArgs, ...extra];
}

if (import.meta.main) {
  const [name, ...rest] = Deno.args;
  const envFile = envFileArg(rest);
  let args: string[];
  try {
    args = runArgs(name ?? "", envFile);
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof RangeError)) throw error;
    // deno-lint-ignore no-console
    console.error(`terrarium ${name ?? ""}: ${error.message}`);
    Deno.exit(78);
  }
  const child = new Deno.Command(Deno.execPath(), { args, stdin: "inherit" }).spawn();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    });
  }
  Deno.exit((await child.status).code);
}
