/**
 * `deno task init-env [RELAY_ENV] [WORKER_ENV]`: writes a relay and a worker env file with
 * fresh random secrets (the same service token in both), mode 0600, every other variable
 * taken from `systemd/*.env.example`. Defaults: `./relay.env` and `./worker.env`; an
 * argument that is a directory gets the default file name inside it (one directory argument
 * gets both). Never overwrites.
 */
import { join } from "node:path";
import { secretWeakness } from "./secret_strength.ts";

const EXAMPLES = new URL("../systemd/", import.meta.url);
/** Letters and digits that cannot be misread when a visitor types the code (no 0/o, 1/l/i). */
const CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789";
const TOKEN_BYTES = 32;
const MAX_DRAWS = 100;

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

/** Draws until the value passes the same check the relay applies (a placeholder-like draw is rare). */
function draw(make: () => string, role: "access_code" | "token"): string {
  for (let i = 0; i < MAX_DRAWS; i++) {
    const value = make();
    if (secretWeakness(value, role) === null) return value;
  }
  throw new Error(`Cannot draw a strong ${role} in ${MAX_DRAWS} tries`);
}

/** A random token: 32 bytes from `crypto.getRandomValues`, base64url (43 characters). */
export function randomToken(): string {
  return draw(() => base64url(crypto.getRandomValues(new Uint8Array(TOKEN_BYTES))), "token");
}

/** A random access code visitors can type: three groups of four, about 59 bits. */
export function randomAccessCode(): string {
  return draw(() => {
    // 256 % 31 ≠ 0, so a rejection step keeps every letter equally likely.
    const chars: string[] = [];
    while (chars.length < 12) {
      for (const byte of crypto.getRandomValues(new Uint8Array(16))) {
        if (byte < 248 && chars.length < 12) chars.push(CODE_ALPHABET[byte % 31]!);
      }
    }
    return [0, 4, 8].map((i) => chars.slice(i, i + 4).join("")).join("-");
  }, "access_code");
}

/** `example` with each `NAME=` line in `values` given that value; other lines kept as they are. */
export function fillTemplate(example: string, values: Record<string, string>): string {
  return example.split("\n").map((line) => {
    const match = /^([A-Z_][A-Z0-9_]*)=/.exec(line);
    if (!match || !(match[1]! in values)) return line;
    const value = values[match[1]!]!;
    return value.startsWith("#") ? value : `${match[1]}=${value}`;
  }).join("\n");
}

/** The two files' text, with fresh secrets. */
export function envFiles(
  relayExample: string,
  workerExample: string,
): { relay: string; worker: string } {
  const serviceToken = randomToken();
  const relay = fillTemplate(relayExample, {
    CHAT_PASSWORD: randomAccessCode(),
    SERVICE_TOKEN: serviceToken,
    ADMIN_TOKEN: randomToken(),
  }).replace(/^# Secrets:.*$/m, "# Secrets: random, written by `deno task init-env`.");
  const worker = fillTemplate(workerExample, {
    SERVICE_TOKEN: serviceToken,
    // The model's name is the operator's to give; until then the worker's default applies.
    AGENT_MODEL: '# AGENT_MODEL=the name your model server serves (unset: "terra")',
  });
  return { relay, worker };
}

function targetPath(arg: string | undefined, name: string): string {
  if (arg === undefined) return name;
  try {
    if (Deno.statSync(arg).isDirectory) return join(arg, name);
  } catch { /* a new file */ }
  return arg;
}

/** Writes `text` to a new file only the owner can read; refuses an existing path. */
async function writeSecretFile(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text, { createNew: true, mode: 0o600 });
  // `mode` is filtered by the umask; 0600 is what both units expect, whatever the umask.
  await Deno.chmod(path, 0o600);
}

/** Writes both files; returns their paths. Throws naming a file that already exists. */
export async function initEnv(args: readonly string[]): Promise<{ relay: string; worker: string }> {
  const relayPath = targetPath(args[0], "relay.env");
  // One directory argument holds both files.
  const workerPath = targetPath(
    args[1] ?? (relayPath === args[0] ? undefined : args[0]),
    "worker.env",
  );
  for (const path of [relayPath, workerPath]) {
    try {
      Deno.lstatSync(path);
      throw new Deno.errors.AlreadyExists(`"${path}" exists; init-env never overwrites a file`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  const files = envFiles(
    await Deno.readTextFile(new URL("relay.env.example", EXAMPLES)),
    await Deno.readTextFile(new URL("worker.env.example", EXAMPLES)),
  );
  await writeSecretFile(relayPath, files.relay);
  try {
    await writeSecretFile(workerPath, files.worker);
  } catch (error) {
    // Half a pair is worse than none: the two share the service token.
    await Deno.remove(relayPath).catch(() => {});
    throw error;
  }
  return { relay: relayPath, worker: workerPath };
}

if (import.meta.main) {
  try {
    const { relay, worker } = await initEnv(Deno.args);
    // deno-lint-ignore no-console
    console.log(
      `Wrote ${relay} and ${worker} (mode 0600) with random secrets and the same SERVICE_TOKEN.\n` +
        `Next: set ALLOWED_ORIGINS and BASE_PATH in ${relay}; API_BASE_URL, AGENT_API_URL and ` +
        `AGENT_MODEL in ${worker}.\nThe access code visitors type is CHAT_PASSWORD in ${relay}.`,
    );
  } catch (error) {
    // deno-lint-ignore no-console
    console.error(`init-env: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
