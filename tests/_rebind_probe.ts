/**
 * Run by tests/worker_rebinding_test.ts under exactly the worker's permission flags: asks
 * the live-fetch code for a URL on an allowlisted name and prints one JSON line with the
 * outcome (`{fetched}` or the tool error's `{code, message}`).
 *
 * Usage: _rebind_probe.ts --env-file=PATH --url=URL
 */
import { envFileArg } from "../lib/env.ts";
import { loadWorkerConfig } from "../lib/worker/config.ts";
import { ToolError } from "../lib/worker/tool_registry.ts";
import { fetchAllowed } from "../lib/worker/tools/live_fetch.ts";

const url = Deno.args.find((a) => a.startsWith("--url="))!.slice("--url=".length);
const config = loadWorkerConfig(envFileArg(Deno.args));
let result: Record<string, unknown>;
try {
  const page = await fetchAllowed(url, config, AbortSignal.timeout(10_000));
  result = { fetched: page.status };
} catch (error) {
  result = error instanceof ToolError
    ? { code: error.code, message: error.message }
    : { code: "error", message: `${(error as Error).name}: ${(error as Error).message}` };
}
// deno-lint-ignore no-console
console.log(JSON.stringify({ probe: "rebind", ...result }));
