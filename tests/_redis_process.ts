/**
 * A test's own Debian `redis-server`: on a free 127.0.0.1 port, in a temp dir, stopped by its
 * PID. `kill()` is a SIGKILL (a crash); `start()` again brings the same server back on the same
 * port and dir, so an append-only file written before the crash is read back.
 */
import { join } from "node:path";
import { freePort } from "./_relay_process.ts";

/** How a test's Redis keeps its data. */
export interface RedisOptions {
  /**
   * `always`: every acknowledged write is on disk before the reply (`appendonly yes`,
   * `appendfsync always`), what a SIGKILL-and-restart test needs. `none`: memory only.
   * @default "none"
   */
  durability?: "always" | "none";
  /** A password (`requirepass`); none by default. */
  password?: string;
  /**
   * A config file read first (the shipped example); the test's port, dir and bind still
   * win, as arguments after it. `durability` is then left to the file.
   */
  configFile?: string;
  /**
   * TLS only (`--port 0 --tls-port PORT`), with a CA and a server certificate for 127.0.0.1
   * made by `openssl` in the server's dir; `url` is then `rediss://` and `caFile` the CA.
   */
  tls?: boolean;
}

/** A running (or stopped, restartable) `redis-server`. */
export interface RedisProcess {
  port: number;
  dir: string;
  /** `redis://127.0.0.1:PORT` (`rediss://` with `tls`; no password in it). */
  url: string;
  /** The CA that signed the server's certificate (with `tls`), else "". */
  caFile: string;
  /** The PID of the running server (changes on every `start()`). */
  pid: number;
  /** Starts the server again on the same port and dir, after `kill()` or `stop()`. */
  start(): Promise<void>;
  /** SIGTERM and reap (Redis writes its files and exits). */
  stop(): Promise<void>;
  /** SIGKILL and reap: a crash, nothing flushed that was not already. */
  kill(): Promise<void>;
  /** Stops the server and removes its dir. */
  dispose(): Promise<void>;
}

/** How long a start may take before the test fails (Redis starts in milliseconds). */
const START_TIMEOUT_MS = 10_000;

/** Starts `redis-server` and waits until it answers PING. */
export async function startRedis(options: RedisOptions = {}): Promise<RedisProcess> {
  const dir = await Deno.makeTempDir({ prefix: "terrarium-redis-" });
  const port = freePort();
  let child: Deno.ChildProcess | null = null;
  let log = "";
  const fromFile = options.configFile !== undefined;
  const caFile = options.tls ? await makeCertificates(dir) : "";
  const args = [
    ...(fromFile ? [options.configFile!] : []),
    "--bind",
    "127.0.0.1",
    ...(options.tls
      ? [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--tls-cert-file",
        join(dir, "server.pem"),
        "--tls-key-file",
        join(dir, "server.key"),
        "--tls-ca-cert-file",
        caFile,
        "--tls-auth-clients",
        "no",
      ]
      : ["--port", String(port)]),
    "--dir",
    dir,
    "--daemonize",
    "no",
    "--logfile",
    "",
    "--protected-mode",
    "yes",
    ...(fromFile ? [] : ["--save", ""]),
    ...(fromFile
      ? []
      : options.durability === "always"
      ? ["--appendonly", "yes", "--appendfsync", "always"]
      : ["--appendonly", "no"]),
    ...(options.password ? ["--requirepass", options.password] : []),
  ];
  const start = async () => {
    child = new Deno.Command("redis-server", {
      args,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        log = (log + text).slice(-8_000);
      }
    };
    collect(child.stdout);
    collect(child.stderr);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await answersPing(port, options.password, caFile))) {
      if (Date.now() > deadline) {
        const running = child;
        child = null;
        await reap(running, "SIGKILL");
        throw new Error(`Cannot start redis-server on port ${port}: no PONG in time\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  const halt = async (signal: Deno.Signal) => {
    const running = child;
    child = null;
    if (running) await reap(running, signal);
  };
  await start();
  return {
    port,
    dir,
    url: `${options.tls ? "rediss" : "redis"}://127.0.0.1:${port}`,
    caFile,
    get pid() {
      if (!child) throw new Error(`redis-server on port ${port} is not running`);
      return child.pid;
    },
    start,
    stop: () => halt("SIGTERM"),
    kill: () => halt("SIGKILL"),
    async dispose() {
      await halt("SIGTERM");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Makes a CA and a server certificate for 127.0.0.1 in `dir` with openssl; returns the CA file. */
async function makeCertificates(dir: string): Promise<string> {
  const run = async (...args: string[]) => {
    const { code, stderr } = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`);
    }
  };
  await Deno.writeTextFile(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1\n");
  const days = ["-days", "2"];
  await run(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    ...days,
    "-subj",
    "/CN=terrarium-test-ca",
  );
  await run(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=127.0.0.1",
  );
  await run(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    ...days,
    "-extfile",
    "ext.cnf",
  );
  return join(dir, "ca.pem");
}

/** Signals the child and waits for it (and its output pipes) to end. */
async function reap(child: Deno.ChildProcess, signal: Deno.Signal): Promise<void> {
  try {
    child.kill(signal);
  } catch { /* already exited */ }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, 10_000);
  await child.status;
  clearTimeout(timer);
}

/** Whether a server on `port` answers PING (RESP by hand, so the helper needs no client). */
async function answersPing(port: number, password?: string, caFile = ""): Promise<boolean> {
  let conn: Deno.Conn | null = null;
  try {
    conn = caFile
      ? await Deno.connectTls({
        hostname: "127.0.0.1",
        port,
        caCerts: [await Deno.readTextFile(caFile)],
      })
      : await Deno.connect({ hostname: "127.0.0.1", port });
    const command = password ? `AUTH ${JSON.stringify(password)}\r\nPING\r\n` : "PING\r\n";
    await conn.write(new TextEncoder().encode(command));
    const buffer = new Uint8Array(256);
    let reply = "";
    const deadline = Date.now() + 1_000;
    while (!reply.includes("PONG") && Date.now() < deadline) {
      const n = await conn.read(buffer);
      if (n === null) break;
      reply += new TextDecoder().decode(buffer.subarray(0, n));
      // A loading server answers -LOADING; it is up but not ready.
      if (reply.startsWith("-")) return false;
    }
    return reply.includes("PONG");
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch { /* closed */ }
  }
}
