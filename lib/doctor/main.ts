/**
 * `deno task doctor relay|worker [--env-file=PATH]`: the preflight an operator runs after
 * editing an env file (issue 15). One line per check, each failure with its fix; exits 1
 * when any check fails, 0 otherwise (warnings included), 64 on a wrong command line.
 */
import { envFileArg } from "../env.ts";
import { type CheckResult, formatResult, runChecks } from "./check.ts";
import { relayChecks } from "./relay_checks.ts";
import { workerChecks } from "./worker_checks.ts";

const USAGE = "Usage: deno task doctor relay|worker [--env-file=PATH]";

/** Runs the checks of `part` and prints one line per check; returns the exit code. */
export async function doctor(
  part: string,
  envFile: string | undefined,
  print: (line: string) => void,
): Promise<number> {
  const checks = part === "relay"
    ? relayChecks(envFile)
    : part === "worker"
    ? workerChecks(envFile)
    : null;
  if (!checks) {
    print(USAGE);
    return 64;
  }
  const results: CheckResult[] = await runChecks(checks, (r) => print(formatResult(r)));
  const failed = results.filter((r) => r.status === "fail").length;
  print(
    failed
      ? `doctor: ${failed} of ${results.length} checks failed`
      : `doctor: the ${part} is ready (${results.length} checks)`,
  );
  return failed ? 1 : 0;
}

if (import.meta.main) {
  const [part = "", ...rest] = Deno.args;
  // deno-lint-ignore no-console
  Deno.exit(await doctor(part, envFileArg(rest), (line) => console.log(line)));
}
