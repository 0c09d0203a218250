/** Configuration of `deno task refresh-content` (env / `--env-file`), resolved once. */
import { resolve } from "node:path";
import { z } from "zod";
import { envBool, envInt, envList, parseEnv, readEnv } from "../env.ts";
import { hostPort } from "../worker/permissions.ts";

/** Every variable the refresh reads; `--allow-env` grants exactly these. */
export const REFRESH_ENV_NAMES = [
  "CONTENT_DIR",
  "REFRESH_SITE_URL",
  "REFRESH_WEB_ROOT",
  "REFRESH_PATHS",
  "REFRESH_MAX_DEPTH",
  "REFRESH_MAX_PAGES",
  "REFRESH_CLEAN_URLS",
  "GITHUB_OWNER",
  "GITHUB_TOKEN",
  "GITHUB_API_URL",
  "GITHUB_MAX_REPOS",
] as const;

export interface RefreshConfig {
  contentDir: string;
  /** Where the site lives (its URLs); "" skips the site. */
  siteUrl: string;
  /** A local web root to read instead of crawling over HTTP; "" crawls. */
  webRoot: string;
  /** Path prefixes that may be crawled ("/" for all). */
  paths: string[];
  maxDepth: number;
  maxPages: number;
  /** Web root pages get URLs without `.html` (the host serves clean URLs). */
  cleanUrls: boolean;
  /** "" skips GitHub. */
  githubOwner: string;
  githubToken: string;
  githubApiUrl: string;
  githubMaxRepos: number;
}

const schema = z.object({
  CONTENT_DIR: z.string().default("content"),
  REFRESH_SITE_URL: z.string().url().optional(),
  REFRESH_WEB_ROOT: z.string().optional(),
  REFRESH_PATHS: envList(),
  REFRESH_MAX_DEPTH: envInt(3, 0, 20),
  REFRESH_MAX_PAGES: envInt(200, 1, 10_000),
  REFRESH_CLEAN_URLS: envBool(false),
  GITHUB_OWNER: z.string().regex(/^[A-Za-z0-9-]{1,39}$/).optional(),
  GITHUB_TOKEN: z.string().optional(),
  GITHUB_API_URL: z.string().url().default("https://api.github.com"),
  GITHUB_MAX_REPOS: envInt(30, 1, 500),
}).superRefine((env, ctx) => {
  if (env.REFRESH_WEB_ROOT && !env.REFRESH_SITE_URL) {
    ctx.addIssue({
      code: "custom",
      path: ["REFRESH_SITE_URL"],
      message: "is required with REFRESH_WEB_ROOT (the pages' public URL)",
    });
  }
});

/** Resolves raw env strings into a `RefreshConfig`. */
export function parseRefreshConfig(raw: Record<string, string | undefined>): RefreshConfig {
  const env = parseEnv(schema, raw);
  return {
    contentDir: resolve(env.CONTENT_DIR),
    siteUrl: env.REFRESH_SITE_URL?.replace(/\/+$/, "") ?? "",
    webRoot: env.REFRESH_WEB_ROOT ? resolve(env.REFRESH_WEB_ROOT) : "",
    paths: env.REFRESH_PATHS.length ? env.REFRESH_PATHS : ["/"],
    maxDepth: env.REFRESH_MAX_DEPTH,
    maxPages: env.REFRESH_MAX_PAGES,
    cleanUrls: env.REFRESH_CLEAN_URLS,
    githubOwner: env.GITHUB_OWNER ?? "",
    githubToken: env.GITHUB_TOKEN ?? "",
    githubApiUrl: env.GITHUB_API_URL.replace(/\/+$/, ""),
    githubMaxRepos: env.GITHUB_MAX_REPOS,
  };
}

/** Reads and resolves the refresh's variables. */
export function loadRefreshConfig(envFile?: string): RefreshConfig {
  return parseRefreshConfig(readEnv(REFRESH_ENV_NAMES, envFile));
}

/** The refresh's own narrow permissions: the site and GitHub hosts, the content dir. */
export function refreshPermissionFlags(config: RefreshConfig, envFile?: string): string[] {
  const net = new Set<string>();
  if (config.siteUrl && !config.webRoot) net.add(hostPort(config.siteUrl));
  if (config.githubOwner) net.add(hostPort(config.githubApiUrl));
  const read = [config.contentDir, config.webRoot, envFile ?? ""].filter(Boolean);
  const flags = [
    "--no-prompt",
    `--allow-read=${read.join(",")}`,
    `--allow-write=${config.contentDir}`,
    `--allow-env=${REFRESH_ENV_NAMES.join(",")}`,
  ];
  if (net.size) flags.push(`--allow-net=${[...net].join(",")}`);
  return flags;
}
