/**
 * Child processes of the benchmark, pinned to one core with `taskset` when it is there, so
 * the server under test and the load generator do not share a core. Spawning, waits and
 * reaping are the tests' own (`tests/_process.ts`).
 */
import { type ChildProcess, spawnDeno } from "../tests/_process.ts";

let tasksetPath: string | null | undefined;

/** `taskset`'s path, or null when the machine has none (then nothing is pinned). */
export function taskset(): string | null {
  if (tasksetPath !== undefined) return tasksetPath;
  tasksetPath = null;
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/taskset`).isFile) return tasksetPath = `${dir}/taskset`;
    } catch { /* not here */ }
  }
  return tasksetPath;
}

/** The cores the benchmark pins to: the server on the first, load on the second. */
export function cores(): { server: number | null; load: number | null } {
  const count = navigator.hardwareConcurrency;
  if (!taskset() || count < 2) return { server: null, load: null };
  return { server: 0, load: 1 };
}

/** Spawns `deno <args>` on `core` (unpinned when null) with `env` added to a clean env. */
export function spawnPinned(
  args: string[],
  options: { core: number | null; env?: Record<string, string>; inheritStderr?: boolean },
): ChildProcess {
  const pin = options.core !== null ? taskset() : null;
  return spawnDeno(args, options.env, {
    // taskset execs deno, so the child's pid is the pinned process itself.
    wrapper: pin ? [pin, "-c", String(options.core)] : undefined,
    // A long run must not grow its output without bound.
    maxLines: 1000,
    inheritStderr: options.inheritStderr,
  });
}
