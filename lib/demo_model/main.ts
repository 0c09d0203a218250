/**
 * Runs the demo model server:
 * `deno run --allow-net=127.0.0.1 lib/demo_model/main.ts [--port=8090] [--hostname=127.0.0.1]
 * [--chunk-delay-ms=20]`. Prints one JSON line `{"msg":"listening","port":N,…}` when ready
 * and stops cleanly on SIGTERM or SIGINT.
 */
import { startModelServer } from "./model_server.ts";

const DEFAULTS = { port: "8090", hostname: "127.0.0.1", "chunk-delay-ms": "20" };
type OptionName = keyof typeof DEFAULTS;

/** Reads `--name=value` from the command line. */
function option(name: OptionName): string {
  const prefix = `--${name}=`;
  return Deno.args.findLast((a) => a.startsWith(prefix))?.slice(prefix.length) ?? DEFAULTS[name];
}

/** Reads a whole non-negative number option, or exits naming the bad one. */
function numberOption(name: OptionName, max: number): number {
  const raw = option(name);
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value > max) {
    // deno-lint-ignore no-console
    console.error(`Cannot parse --${name}: "${raw}" is not a whole number from 0 to ${max}`);
    Deno.exit(2);
  }
  return value;
}

const unknown = Deno.args.filter((a) =>
  !Object.keys(DEFAULTS).some((n) => a.startsWith(`--${n}=`))
);
if (unknown.length > 0) {
  // deno-lint-ignore no-console
  console.error(`Unknown argument "${unknown[0]}"; use --port=N --hostname=H --chunk-delay-ms=N`);
  Deno.exit(2);
}

const server = startModelServer({
  hostname: option("hostname"),
  port: numberOption("port", 65_535),
  chunkDelayMs: numberOption("chunk-delay-ms", 60_000),
});
// deno-lint-ignore no-console
console.log(JSON.stringify({
  msg: "listening",
  component: "demo-model",
  url: server.url,
  port: server.port,
}));

const signals = ["SIGTERM", "SIGINT"] as const;
let onSignal = () => {};
await new Promise<void>((resolve) => {
  onSignal = resolve;
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
});
// Signal listeners keep the process alive: remove them so it ends once the server has.
for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
await server.close();
// deno-lint-ignore no-console
console.log(JSON.stringify({ msg: "stopped", component: "demo-model" }));
