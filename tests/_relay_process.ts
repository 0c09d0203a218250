/**
 * Starts the relay as a real process, through `runArgs("relay")`: the same permission
 * flags `deno task relay` and the build use. Config goes in through an env file; the child
 * sees no other environment. Every wait is bounded; `stop()`/`kill()` always reap.
 */
import { join } from "node:path";
import { runArgs } from "../lib/launch.ts";

export const TEST_SECRETS = {
  CHAT_PASSWORD: "open-sesame-42",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
  ADMIN_TOKEN: "adm-0123456789abcdef0123456789abcdef",
} as const;

/** A running relay process. */
export interface RelayProcess {
  /** "http://127.0.0.1:PORT" */
  url: string;
  port: number;
  dir: string;
  kvPath: string;
  envFile: string;
  env: Record<string, string>;
  /** Every stdout/stderr line so far (JSON log lines and anything else). */
  lines: string[];
  /** SIGTERM, then wait for exit (bounded); returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL, then wait for exit. */
  kill(): Promise<void>;
  /** Resolves with the exit status. */
  status: Promise<Deno.CommandStatus>;
}

/** A TCP port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function envFileText(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n";
}

/**
 * Starts a relay in `dir` (a new temp dir by default) and waits for its "listening" line.
 * `env` overrides the test defaults; pass the same `dir`/`port` to restart on the same KV.
 */
export async function startRelay(
  env: Record<string, string> = {},
  options: { dir?: string; port?: number; timeoutMs?: number } = {},
): Promise<RelayProcess> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "terrarium-relay-" });
  const port = options.port ?? freePort();
  const kvPath = join(dir, "kv", "relay.kv");
  const fullEnv: Record<string, string> = {
    ...TEST_SECRETS,
    PORT: String(port),
    HOSTNAME: "127.0.0.1",
    KV_PATH: kvPath,
    LOG_LEVEL: "info",
    WS_IDLE_TIMEOUT_SECONDS: "10",
    ...env,
  };
  const envFile = join(dir, "relay.env");
  await Deno.writeTextFile(envFile, envFileText(fullEnv));
  const child = new Deno.Command(Deno.execPath(), {
    args: runArgs("relay", envFile),
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const lines: string[] = [];
  let onLine: (() => void) | null = null;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buffered = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts);
      onLine?.();
    }
    if (buffered) lines.push(buffered);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumps;
    return s;
  });

  const timeoutMs = options.timeoutMs ?? 20_000;
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const check = () => {
      if (lines.some((line) => line.includes('"msg":"listening"'))) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    onLine = check;
    check();
    status.then(() => {
      clearTimeout(timer);
      resolve(lines.some((line) => line.includes('"msg":"listening"')));
    });
  });
  onLine = null;
  const kill = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await status;
  };
  if (!ready) {
    await kill();
    throw new Error(`Relay did not start within ${timeoutMs} ms:\n${lines.join("\n")}`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    kvPath,
    envFile,
    env: fullEnv,
    lines,
    status,
    kill,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const s = await status;
      clearTimeout(timer);
      return s.code;
    },
  };
}

/** Runs `fn` with a fresh relay and always stops it and removes its dir. */
export async function withRelay(
  env: Record<string, string>,
  fn: (relay: RelayProcess) => Promise<void>,
): Promise<void> {
  const relay = await startRelay(env);
  try {
    await fn(relay);
  } finally {
    await relay.kill();
    await Deno.remove(relay.dir, { recursive: true }).catch(() => {});
  }
}
