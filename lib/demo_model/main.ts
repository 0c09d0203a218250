/**
 * Runs the demo model server: `deno run --allow-net=127.0.0.1 lib/demo_model/main.ts
 * [--port=8090] [--hostname=127.0.0.1] [--chunk-delay-ms=20]`. Prints one JSON line when
 * listening; stops on SIGTERM/SIGINT.
 */
import { startModelServer } from "./model_server.ts";

function option(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  return Deno.args.find((a) => a.startsWith(prefix))?.slice(prefix.length) ?? fallback;
}

const server = startModelServer({
  hostname: option("hostname", "127.0.0.1"),
  port: Number(option("port", "8090")),
  chunkDelayMs: Number(option("chunk-delay-ms", "20")),
});
// deno-lint-ignore no-console
console.log(
  JSON.stringify({ msg: "listening", component: "demo-model", url: server.url, port: server.port }),
);
await new Promise<void>((resolve) => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => resolve());
  }
});
await server.close();
