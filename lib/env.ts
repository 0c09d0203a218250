/**
 * Typed configuration from the environment and an optional `--env-file`.
 *
 * Stage one reads raw strings (env file first, the real environment wins); stage two is a
 * zod schema per binary that turns them into a resolved config with no optional fields.
 * Every problem names its variable, and all problems are reported at once.
 */
import { parse as parseDotenv } from "dotenv";
import { z } from "zod";
import {
  placeholderIn,
  SECRET_FIX_HINT,
  type SecretRole,
  secretWeakness,
} from "./secret_strength.ts";

/** Raised when configuration is missing or malformed; `problems` has one line per variable. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Returns the value of `--env-file=PATH` or `--env-file PATH` in `args`, if any. */
export function envFileArg(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith("--env-file=")) return arg.slice("--env-file=".length);
    if (arg === "--env-file") return args[i + 1];
  }
  return undefined;
}

/** Parses a dotenv file; a missing or unreadable file is a `ConfigError`. */
export function readEnvFile(path: string): Record<string, string> {
  try {
    return parseDotenv(Deno.readTextFileSync(path));
  } catch (error) {
    throw new ConfigError([`--env-file: cannot read "${path}": ${(error as Error).message}`]);
  }
}

/**
 * Collects `names` from the env file (if given) overlaid by the process environment.
 * Only the listed names are read, so the process needs `--allow-env` for exactly these.
 */
export function readEnv(
  names: readonly string[],
  envFile?: string,
): Record<string, string | undefined> {
  const fromFile = envFile ? readEnvFile(envFile) : {};
  const out: Record<string, string | undefined> = {};
  for (const name of names) {
    const value = Deno.env.get(name) ?? fromFile[name];
    out[name] = value === "" ? undefined : value;
  }
  return out;
}

/** Validates raw env strings with `schema`, naming each bad variable in one `ConfigError`. */
export function parseEnv<S extends z.ZodType>(
  schema: S,
  raw: Record<string, string | undefined>,
): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.length ? issue.path.join(".") : "config";
    return `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

const TRUE_WORDS = new Set(["1", "true", "yes", "on"]);
const FALSE_WORDS = new Set(["0", "false", "no", "off"]);

/** An env boolean ("true"/"false", "1"/"0", "yes"/"no", "on"/"off") with a default. */
export function envBool(fallback: boolean) {
  return z.string().optional().transform((value, ctx) => {
    if (value === undefined) return fallback;
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    ctx.addIssue({ code: "custom", message: `expected true or false, got "${value}"` });
    return z.NEVER;
  });
}

/** An env integer within `[min, max]` with a default. */
export function envInt(fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return z.string().optional().transform((value, ctx) => {
    if (value === undefined) return fallback;
    const n = Number(value.trim());
    if (!Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({
        code: "custom",
        message: `expected a whole number from ${min} to ${max}, got "${value}"`,
      });
      return z.NEVER;
    }
    return n;
  });
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** An env byte size such as "256kb", "1mb" or "4096", with a default. */
export function envBytes(fallback: string) {
  return z.string().optional().transform((value, ctx) => {
    const text = (value ?? fallback).trim().toLowerCase();
    const match = /^(\d+)\s*(b|kb|mb|gb)?$/.exec(text);
    if (!match) {
      ctx.addIssue({ code: "custom", message: `expected a size like "256kb", got "${value}"` });
      return z.NEVER;
    }
    return Number(match[1]) * SIZE_UNITS[match[2] ?? ""]!;
  });
}

/** An env comma-separated list, trimmed, empty entries dropped. */
export function envList() {
  return z.string().optional().transform((value) =>
    (value ?? "").split(",").map((item) => item.trim()).filter(Boolean)
  );
}

/**
 * A required secret that is strong enough for `role` (see `secret_strength.ts`): not an
 * example value, no placeholder words, long and varied enough. `allowWeak` (demo mode)
 * accepts anything, including nothing (then `fallback`).
 */
export function envSecret(role: SecretRole, allowWeak: boolean, fallback: string) {
  return z.string().optional().transform((value, ctx) => {
    if (allowWeak) return value ?? fallback;
    if (value === undefined) {
      ctx.addIssue({ code: "custom", message: `is required; ${SECRET_FIX_HINT}` });
      return z.NEVER;
    }
    const weakness = secretWeakness(value, role);
    if (weakness) {
      ctx.addIssue({ code: "custom", message: `${weakness}; ${SECRET_FIX_HINT}` });
      return z.NEVER;
    }
    return value;
  });
}

/** Like `envSecret`, but unset is allowed (and stays `undefined`). */
export function envOptionalSecret(role: SecretRole, allowWeak: boolean) {
  return z.string().optional().transform((value, ctx) => {
    if (value === undefined || allowWeak) return value;
    const weakness = secretWeakness(value, role);
    if (weakness) {
      ctx.addIssue({ code: "custom", message: `${weakness}; ${SECRET_FIX_HINT}` });
      return z.NEVER;
    }
    return value;
  });
}

/** A name (such as a model name) that must not be a template's placeholder, with a default. */
export function envNotPlaceholder(fallback: string) {
  return z.string().optional().transform((value, ctx) => {
    if (value === undefined) return fallback;
    const word = placeholderIn(value);
    if (word) {
      ctx.addIssue({
        code: "custom",
        message: `looks like a placeholder (it contains "${word}"); set the real value`,
      });
      return z.NEVER;
    }
    return value;
  });
}
