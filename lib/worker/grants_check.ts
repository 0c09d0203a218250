/**
 * At start the worker compares its configuration with the permissions it actually runs
 * under (SPEC §5): a grant it needs but lacks stops it, naming the gap; a grant broader
 * than it needs (say `-A`) is reported so the operator is warned loudly.
 */
import type { WorkerGrants } from "./permissions.ts";

/** What is missing and what is broader than needed. */
export interface GrantReport {
  missing: string[];
  broader: string[];
}

async function granted(descriptor: Deno.PermissionDescriptor): Promise<boolean> {
  return (await Deno.permissions.query(descriptor)).state === "granted";
}

/** Checks the running process's permissions against `grants`. */
export async function checkGrants(grants: WorkerGrants): Promise<GrantReport> {
  const missing: string[] = [];
  for (const host of grants.net) {
    if (!(await granted({ name: "net", host }))) missing.push(`--allow-net=${host}`);
  }
  for (const path of grants.read) {
    if (!(await granted({ name: "read", path }))) missing.push(`--allow-read=${path}`);
  }
  for (const path of grants.write) {
    if (!(await granted({ name: "write", path }))) missing.push(`--allow-write=${path}`);
  }
  for (const variable of grants.env) {
    if (!(await granted({ name: "env", variable }))) missing.push(`--allow-env=${variable}`);
  }

  const broader: string[] = [];
  const blanket: [Deno.PermissionDescriptor, string][] = [
    [{ name: "net" }, "network access to any host"],
    [{ name: "read" }, "read access to the whole filesystem"],
    [{ name: "write" }, "write access to the whole filesystem"],
    [{ name: "env" }, "every environment variable"],
    [{ name: "run" }, "running subprocesses"],
    [{ name: "ffi" }, "loading native libraries"],
    [{ name: "sys" }, "system information"],
  ];
  for (const [descriptor, what] of blanket) {
    if (await granted(descriptor)) broader.push(what);
  }
  return { missing, broader };
}
