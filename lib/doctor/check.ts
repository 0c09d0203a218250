/**
 * One preflight check and its outcome (`deno task doctor`, issue 15): a name, what was
 * found, and for a failure the fix in one sentence. Checks run in order; a check that
 * needs an earlier one to pass says so and is skipped.
 */

/** How a check ended. `warn` passes but wants a look; `skip` did not apply. */
export type CheckStatus = "ok" | "warn" | "fail" | "skip";

/** The outcome of one check. */
export interface CheckResult {
  name: string;
  status: CheckStatus;
  /** What was found, in a few words. */
  detail: string;
  /** For `fail` (and `warn`): what to change, naming the variable or file. */
  fix?: string;
}

/** A named check; returns its outcome (a throw counts as a failure with its message). */
export interface Check {
  name: string;
  run(): Promise<Omit<CheckResult, "name">> | Omit<CheckResult, "name">;
}

const LABEL: Record<CheckStatus, string> = { ok: "ok  ", warn: "warn", fail: "FAIL", skip: "skip" };

/** One line per result: `FAIL  relay reachable: connection refused → start the relay …`. */
export function formatResult(result: CheckResult): string {
  const fix = result.fix ? ` → ${result.fix}` : "";
  return `${LABEL[result.status]}  ${result.name}: ${result.detail}${fix}`;
}

/** Runs `checks` in order, calling `report` with each result as it comes. */
export async function runChecks(
  checks: Check[],
  report: (result: CheckResult) => void,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    let outcome: Omit<CheckResult, "name">;
    try {
      outcome = await check.run();
    } catch (error) {
      outcome = { status: "fail", detail: (error as Error).message ?? String(error) };
    }
    const result = { name: check.name, ...outcome };
    results.push(result);
    report(result);
  }
  return results;
}

/** Shorthands for outcomes. */
export const ok = (detail: string) => ({ status: "ok" as const, detail });
export const warn = (detail: string, fix: string) => ({ status: "warn" as const, detail, fix });
export const fail = (detail: string, fix: string) => ({ status: "fail" as const, detail, fix });
export const skip = (detail: string) => ({ status: "skip" as const, detail });
