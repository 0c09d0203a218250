/** A child process whose output lines are collected, with bounded waits and reaping. */

/** A running child with its collected stdout/stderr lines. */
export interface ChildProcess {
  pid: number;
  lines: string[];
  status: Promise<Deno.CommandStatus>;
  /** Waits (bounded) until a line matches; throws with the output on timeout or exit. */
  waitForLine(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; returns the exit code. */
  stop(graceMs?: number): Promise<number>;
  /** SIGKILL and reap. */
  kill(): Promise<void>;
}

/**
 * Spawns `deno <args>` with only `env` (plus PATH/HOME) and collects its output. `wrapper`
 * runs deno through another command (a shell that sets a resource limit first, `taskset`);
 * the deno path and `args` are appended to it. `maxLines` keeps only the latest lines, for
 * long runs; `inheritStderr` passes stderr through instead of collecting it.
 */
export function spawnDeno(
  args: string[],
  env: Record<string, string> = {},
  options: { wrapper?: string[]; maxLines?: number; inheritStderr?: boolean } = {},
): ChildProcess {
  const [command, ...prefix] = options.wrapper ?? [Deno.execPath()];
  const child = new Deno.Command(command!, {
    args: options.wrapper ? [...prefix, Deno.execPath(), ...args] : args,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      NO_COLOR: "1",
      ...env,
    },
    stdout: "piped",
    stderr: options.inheritStderr ? "inherit" : "piped",
    stdin: "null",
  }).spawn();
  const maxLines = options.maxLines ?? Infinity;
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buffered = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts);
      if (lines.length > maxLines) lines.splice(0, lines.length - maxLines);
      for (const listener of listeners) listener();
    }
    if (buffered) lines.push(buffered);
  };
  const pumps = Promise.all([
    pump(child.stdout),
    options.inheritStderr ? undefined : pump(child.stderr),
  ]);
  let exited = false;
  const status = child.status.then(async (s) => {
    await pumps;
    exited = true;
    for (const listener of listeners) listener();
    return s;
  });
  const matches = (line: string, pattern: RegExp | string) =>
    typeof pattern === "string" ? line.includes(pattern) : pattern.test(line);
  const kill = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await status;
  };
  return {
    pid: child.pid,
    lines,
    status,
    kill,
    waitForLine(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = lines.find((l) => matches(l, pattern));
          if (line !== undefined) return done(() => resolve(line));
          if (exited) {
            done(() => reject(new Error(`Process exited before ${pattern}:\n${lines.join("\n")}`)));
          }
        };
        const timer = setTimeout(
          () =>
            done(() => reject(new Error(`Timed out waiting for ${pattern}:\n${lines.join("\n")}`))),
          timeoutMs,
        );
        function done(then: () => void) {
          clearTimeout(timer);
          listeners.delete(check);
          then();
        }
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 15_000) {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
      }, graceMs);
      const s = await status;
      clearTimeout(timer);
      return s.code;
    },
  };
}
