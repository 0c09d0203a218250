/**
 * Run by tests/worker_sandbox_test.ts under exactly the worker's permission flags. It
 * plays a buggy tool that skipped every app-level check, tries what the sandbox must stop
 * and what it must allow, and prints one JSON line of outcomes.
 *
 * Usage: _sandbox_probe.ts --env-file=PATH --outside-file=PATH --outside-dir=PATH --outside-url=URL
 *   --redirect-url=URL
 */
import { join } from "node:path";
import { envFileArg } from "../lib/env.ts";
import { loadWorkerConfig } from "../lib/worker/config.ts";

function arg(name: string): string {
  const prefix = `--${name}=`;
  const value = Deno.args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
  if (!value) throw new Error(`Missing ${prefix}`);
  return value;
}

async function outcome(attempt: () => Promise<unknown> | unknown): Promise<string> {
  try {
    await attempt();
    return "allowed";
  } catch (error) {
    return error instanceof Deno.errors.NotCapable ? "denied" : `error:${(error as Error).name}`;
  }
}

const config = loadWorkerConfig(envFileArg(Deno.args));
await Deno.mkdir(config.enhancementDir, { recursive: true }).catch(() => {});
const results = {
  readContent: await outcome(() => Deno.readTextFile(join(config.contentDir, "profile.md"))),
  readOutside: await outcome(() => Deno.readTextFile(arg("outside-file"))),
  writeEnhancement: await outcome(() =>
    Deno.writeTextFile(join(config.enhancementDir, "probe.txt"), "ok")
  ),
  writeOutside: await outcome(() => Deno.writeTextFile(join(arg("outside-dir"), "probe.txt"), "x")),
  fetchOutside: await outcome(() => fetch(arg("outside-url")).then((r) => r.body?.cancel())),
  // An allowed host that redirects elsewhere: fetch follows, Deno's grants stop it.
  fetchRedirectedOutside: await outcome(() =>
    fetch(arg("redirect-url")).then((r) => r.body?.cancel())
  ),
  run: await outcome(() => new Deno.Command("true").output()),
  envOutside: await outcome(() => Deno.env.get("PATH")),
  sys: await outcome(() => Deno.hostname()),
};
// deno-lint-ignore no-console
console.log(JSON.stringify(results));
