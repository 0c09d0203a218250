/** `deno task build`: the exact compile commands, the DENORT_BIN guard, and (with a base binary) real binaries. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compileCommands, denortUrl, parsePorts } from "../lib/tasks/build.ts";
import { envFiles } from "../lib/tasks/init_env.ts";
import { parseRelayConfig } from "../lib/relay/config.ts";
import { relayPermissionFlags } from "../lib/relay/permissions.ts";
import { DEFAULT_WEB_OUT } from "../lib/tasks/web_build.ts";
import { loadWorkerConfig } from "../lib/worker/config.ts";
import { workerPermissionFlags } from "../lib/worker/permissions.ts";
import { assert, assertEquals } from "./_assert.ts";
import { spawnDeno } from "./_process.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BUILD_TS = join(ROOT, "lib/tasks/build.ts");
// The examples with fresh secrets, as `deno task init-env` writes them: the example values
// themselves are refused, as they would be on a real deployment.
const ENV_DIR = Deno.makeTempDirSync({ prefix: "terrarium-build-env-" });
const WORKER_ENV = join(ENV_DIR, "worker.env");
const RELAY_ENV = join(ENV_DIR, "relay.env");
const examples = envFiles(
  Deno.readTextFileSync(join(ROOT, "systemd/relay.env.example")),
  Deno.readTextFileSync(join(ROOT, "systemd/worker.env.example")),
);
Deno.writeTextFileSync(RELAY_ENV, examples.relay);
Deno.writeTextFileSync(WORKER_ENV, examples.worker);
globalThis.addEventListener("unload", () => Deno.removeSync(ENV_DIR, { recursive: true }));

Deno.test("the build compiles each binary with the flags its launcher and tests use", () => {
  const [relay, worker] = compileCommands({
    workerEnvFile: WORKER_ENV,
    relayEnvFile: RELAY_ENV,
    target: "x86_64-unknown-linux-gnu",
    outDir: "/out",
  });
  const relayConfig = parseRelayConfig({
    PORT: "4100",
    HOSTNAME: "127.0.0.1",
    KV_PATH: "/var/lib/terrarium-relay/relay.kv",
    WEB_DIR: DEFAULT_WEB_OUT,
    DEMO_MODE: "true",
  });
  assertEquals(relay!.args, [
    "compile",
    ...relayPermissionFlags(relayConfig),
    "--target=x86_64-unknown-linux-gnu",
    "--include",
    DEFAULT_WEB_OUT,
    "--output",
    "/out/terrarium-relay",
    join(ROOT, "relay.ts"),
  ]);
  assertEquals(worker!.args, [
    "compile",
    ...workerPermissionFlags(loadWorkerConfig(WORKER_ENV)),
    "--target=x86_64-unknown-linux-gnu",
    "--output",
    "/out/terrarium-worker",
    join(ROOT, "worker.ts"),
  ]);
  const relayRead = relay!.args.find((a) => a.startsWith("--allow-read="))!.split(/[=,]/);
  assert(relayRead.includes("/var/lib/terrarium-relay") && relayRead.includes(DEFAULT_WEB_OUT));
  assert(worker!.args.includes("--allow-net=127.0.0.1:8000,127.0.0.1:8888,example.com:443"));
});

Deno.test("--relay-ports bakes a listen grant for each relay instance into one relay binary", () => {
  const [relay] = compileCommands({
    workerEnvFile: WORKER_ENV,
    relayEnvFile: RELAY_ENV,
    relayPorts: parsePorts("4100,4101"),
    outDir: "/out",
  });
  const net = relay!.args.find((a) => a.startsWith("--allow-net="));
  assertEquals(net, "--allow-net=127.0.0.1:4100,127.0.0.1:4101");
  assertEquals(parsePorts(undefined), undefined);
  for (const bad of ["4100,", "http", "0", "70000"]) {
    let message = "";
    try {
      parsePorts(bad);
    } catch (error) {
      message = (error as Error).message;
    }
    assert(message.includes("--relay-ports"), `${bad}: ${message}`);
  }
});

Deno.test("where deno compile cannot fetch its base, the build names the file to get for the target", async () => {
  // A proxy that refuses every connection, for everything but the npm registry: the base
  // download fails here as on a machine without access to dl.deno.land, while npm packages
  // (the page's bundler, on a fresh cache) come as they do for every other test.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const target = "aarch64-unknown-linux-gnu";
  const child = spawnDeno([
    "run",
    "--allow-read",
    "--allow-write=dist,web",
    "--allow-env",
    "--allow-run",
    BUILD_TS,
    `--worker-env-file=${WORKER_ENV}`,
    `--target=${target}`,
  ], {
    DENORT_BIN: "",
    HTTPS_PROXY: `http://127.0.0.1:${closedPort}`,
    NO_PROXY: new URL(Deno.env.get("NPM_CONFIG_REGISTRY") ?? "https://registry.npmjs.org").hostname,
    // How this machine trusts the npm registry, if it needs telling.
    ...Object.fromEntries(
      ["NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "DENO_CERT", "DENO_TLS_CA_STORE"].flatMap((name) => {
        const value = Deno.env.get(name);
        return value ? [[name, value]] : [];
      }),
    ),
    DENO_DIR: Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache/deno"),
  });
  assertEquals((await child.status).code, 1);
  const output = child.lines.join("\n");
  const line = child.lines.find((l) => l.startsWith("build: "));
  assert(line, output);
  assert(line.includes(`runtime base for ${target} (Connection refused`), line);
  assert(line.includes(`download ${denortUrl(target)}`), line);
  assert(line.includes("DENORT_BIN=/path/to/denort"), line);
  assertEquals(
    denortUrl(target),
    `https://dl.deno.land/release/v${Deno.version.deno}/denort-${target}.zip`,
  );
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
  assert(tasks.build.includes("--allow-write=dist,web"), "the task may write the page it embeds");
});

const denort = Deno.env.get("DENORT_BIN");
Deno.test({
  name: "with DENORT_BIN both binaries are built and refuse a missing config",
  ignore: !denort,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      for (const { args } of compileCommands({ workerEnvFile: WORKER_ENV, outDir: out })) {
        const status = await new Deno.Command(Deno.execPath(), {
          args,
          env: { DENORT_BIN: denort! },
        }).spawn().status;
        assert(status.success);
      }
      for (const name of ["terrarium-relay", "terrarium-worker"]) {
        const run = await new Deno.Command(join(out, name), { clearEnv: true, stderr: "piped" })
          .output();
        assertEquals(run.code, 78, `${name} exits with EX_CONFIG on a missing config`);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
