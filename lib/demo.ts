/**
 * `deno task demo`: the relay (demo mode, KV under ./data/demo), the deterministic model
 * server and a worker with the sample content, each as its own process under its own
 * permission flags, on localhost. Prints the URL and access code; Ctrl-C stops all three.
 *
 * Options: --port=N (relay, default 4100), --model-port=N (default 8090), --kv-dir=PATH.
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomToken } from "./init_env.ts";
import { runArgs } from "./launch.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function option(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  return Deno.args.find((a) => a.startsWith(prefix))?.slice(prefix.length) ?? fallback;
}

/** Starts `deno <args>` with `env`, prefixing its output lines with `name`. */
function start(name: string, args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let onReady: ((line: string) => void) | null = null;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buffered = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        onReady?.(line);
        // deno-lint-ignore no-console
        console.log(`[${name}] ${line}`);
      }
    }
  };
  void pump(child.stdout);
  void pump(child.stderr);
  const ready = (pattern: string, timeoutMs = 30_000) =>
    new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start`)), timeoutMs);
      onReady = (line) => {
        if (line.includes(pattern)) {
          clearTimeout(timer);
          onReady = null;
          resolveReady();
        }
      };
      child.status.then(() => reject(new Error(`${name} exited during start-up`)));
    });
  return { child, ready };
}

async function writeEnv(path: string, env: Record<string, string>): Promise<string> {
  await Deno.writeTextFile(
    path,
    Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n",
  );
  return path;
}

if (import.meta.main) {
  const port = option("port", "4100");
  const modelPort = option("model-port", "8090");
  const dir = resolve(option("kv-dir", join(ROOT, "data", "demo")));
  await Deno.mkdir(dir, { recursive: true });
  const relayUrl = `http://127.0.0.1:${port}`;
  const accessCode = "terra-demo";
  // The worker has no demo mode: it gets a real random token, which the demo relay accepts.
  const serviceToken = randomToken();
  const relayEnv = await writeEnv(join(dir, "relay.env"), {
    DEMO_MODE: "true",
    PORT: port,
    HOSTNAME: "127.0.0.1",
    KV_PATH: join(dir, "relay.kv"),
    CHAT_PASSWORD: accessCode,
    SERVICE_TOKEN: serviceToken,
  });
  const workerEnv = await writeEnv(join(dir, "worker.env"), {
    API_BASE_URL: relayUrl,
    SERVICE_TOKEN: serviceToken,
    AGENT_API_URL: `http://127.0.0.1:${modelPort}/v1`,
    AGENT_HEALTH_URL: `http://127.0.0.1:${modelPort}/health`,
    AGENT_MODEL: "terra-demo",
    CONTENT_DIR: join(ROOT, "content"),
    ENHANCEMENT_DIR: join(dir, "enhancements"),
    POLL_INTERVAL_SECONDS: "2",
  });

  const parts = [
    start("model", [
      "run",
      `--allow-net=127.0.0.1:${modelPort}`,
      join(ROOT, "lib/demo_model/main.ts"),
      `--port=${modelPort}`,
    ]),
    start("relay", runArgs("relay", relayEnv)),
  ];
  const stopAll = async () => {
    for (const part of parts) {
      try {
        part.child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    await Promise.allSettled(parts.map((p) => p.child.status));
  };
  try {
    await parts[0]!.ready('"msg":"listening"');
    await parts[1]!.ready('"msg":"listening"');
    const worker = start("worker", runArgs("worker", workerEnv));
    parts.push(worker);
    await worker.ready('"msg":"worker started"');
  } catch (error) {
    // deno-lint-ignore no-console
    console.error(`demo: ${(error as Error).message}`);
    await stopAll();
    Deno.exit(1);
  }
  // deno-lint-ignore no-console
  console.log(
    `\n  terrarium demo ready: ${relayUrl}/   access code: ${accessCode}\n  Ctrl-C stops it.\n`,
  );
  await new Promise<void>((resolveStop) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(signal, () => resolveStop());
    }
  });
  await stopAll();
  Deno.exit(0);
}
