/**
 * Child processes of the benchmark, pinned to one core with `taskset` when it is there, so
 * the server under test and the load generator do not share a core. Every wait is bounded
 * and `stop()` always reaps.
 */

/** A running child: its pid (the pinned process itself; `taskset` execs), output lines. */
export interface BenchChild {
  pid: number;
  lines: string[];
  /** Waits (bounded) for an output line containing `text`; throws with the output otherwise. */
  waitForLine(text: string, timeoutMs?: number): Promise<string>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once reaped. */
  stop(graceMs?: number): Promise<void>;
  status: Promise<Deno.CommandStatus>;
}

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
export function spawnDeno(
  args: string[],
  options: { core: number | null; env?: Record<string, string>; stderr?: "piped" | "inherit" },
): BenchChild & { process: Deno.ChildProcess } {
  const pin = options.core !== null && taskset();
  const command = pin ? taskset()! : Deno.execPath();
  const fullArgs = pin ? ["-c", String(options.core), Deno.execPath(), ...args] : args;
  const process = new Deno.Command(command, {
    args: fullArgs,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      NO_COLOR: "1",
      ...options.env,
    },
    stdout: "piped",
    stderr: options.stderr ?? "piped",
    stdin: "null",
  }).spawn();
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buffered = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      // Keep the last lines only: a long run must not grow without bound.
      lines.push(...parts);
      if (lines.length > 2000) lines.splice(0, lines.length - 1000);
      for (const listener of listeners) listener();
    }
    if (buffered) lines.push(buffered);
  };
  const pumps = Promise.all([
    pump(process.stdout),
    options.stderr === "inherit" ? Promise.resolve() : pump(process.stderr),
  ]);
  let exited = false;
  const status = process.status.then(async (s) => {
    await pumps;
    exited = true;
    for (const listener of listeners) listener();
    return s;
  });
  const signal = (name: Deno.Signal) => {
    try {
      process.kill(name);
    } catch { /* exited */ }
  };
  return {
    process,
    pid: process.pid,
    lines,
    status,
    waitForLine(text, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => finish(new Error(`Timed out waiting for "${text}"`)),
          timeoutMs,
        );
        const check = () => {
          const line = lines.find((l) => l.includes(text));
          if (line !== undefined) finish(null, line);
          else if (exited) finish(new Error(`Process exited before "${text}"`));
        };
        function finish(error: Error | null, line = "") {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(new Error(`${error.message}:\n${lines.slice(-30).join("\n")}`));
          else resolve(line);
        }
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 5_000) {
      signal("SIGTERM");
      const timer = setTimeout(() => signal("SIGKILL"), graceMs);
      await status;
      clearTimeout(timer);
    },
  };
}
