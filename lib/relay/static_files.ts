/**
 * Serves the page's static files from `WEB_DIR` with validators: a strong ETag from the
 * content hash (304 on `If-None-Match`), `no-cache` for HTML so a deploy shows at once,
 * and a long max-age for assets whose names carry their hash. The widget's files
 * (`widget.js`, its chunk and stylesheet) are loaded by other sites' pages: they alone say
 * `Cross-Origin-Resource-Policy: cross-origin` and answer CORS for `ALLOWED_ORIGINS`.
 */
import { extname, join, normalize } from "node:path";
import { sha256Hex } from "../digest.ts";
import { pageCsp } from "../page_csp.ts";
import { RelayError } from "./errors.ts";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".webmanifest": "application/manifest+json",
  ".txt": "text/plain; charset=utf-8",
};

/** The page's policy, plus what a <meta> policy cannot say: no framing by other sites. */
const HTML_CSP = `${pageCsp()}; frame-ancestors 'none'`;

/** Bytes no file name of ours holds: NUL and other controls (Deno refuses NUL), backslash. */
// deno-lint-ignore no-control-regex -- matching control bytes is the point
const BAD_PATH_CHARS = /[\u0000-\u001f\u007f\\]/;

/**
 * The page path after the page root, decoded once from the raw URL path: 400 `bad_path`
 * for malformed percent-encoding (not UTF-8) and for control bytes, so a NUL reaches
 * neither the file system (a 500) nor the error log.
 */
export function decodePagePath(rawPath: string): string {
  let rel: string;
  try {
    rel = decodeURIComponent(rawPath);
  } catch {
    throw new RelayError("bad_path", "The path is not valid percent-encoded UTF-8.");
  }
  if (BAD_PATH_CHARS.test(rel)) {
    throw new RelayError("bad_path", "The path holds a control character or a backslash.");
  }
  return rel;
}

/** A fingerprinted asset name, e.g. "app.3f9a1c2b.js": safe to cache for a year. */
const FINGERPRINTED = /\.[0-9a-f]{8,}\.[a-z0-9]+$/;

/** The widget's loader and its fingerprinted chunk and stylesheet (see lib/tasks/web_build.ts). */
const WIDGET_FILE = /^widget(?:-chat)?(?:\.[0-9a-f]{8,})?\.(?:js|css)$/;

/** Whether `relPath` is one of the widget's files, which other sites' pages load. */
export function isWidgetFile(relPath: string): boolean {
  return WIDGET_FILE.test(relPath);
}

interface CachedFile {
  body: Uint8Array<ArrayBuffer>;
  etag: string;
  type: string;
}

export class StaticFiles {
  #root: string;
  #cache = new Map<string, CachedFile>();

  #allowedOrigins: readonly string[];

  constructor(root: string, options: { allowedOrigins?: readonly string[] } = {}) {
    this.#root = normalize(root);
    this.#allowedOrigins = options.allowedOrigins ?? [];
  }

  /**
   * The response for `relPath` ("" is index.html), or null when there is no such file.
   * `origin` is the request's `Origin` (a module import from another site sends one).
   */
  async serve(
    relPath: string,
    ifNoneMatch: string | null,
    origin: string | null = null,
  ): Promise<Response | null> {
    const clean = relPath === "" || relPath.endsWith("/") ? relPath + "index.html" : relPath;
    if (clean.split("/").some((part) => part === ".." || part.startsWith("."))) return null;
    const file = await this.#load(clean);
    if (!file) return null;
    const headers = new Headers({
      "content-type": file.type,
      etag: file.etag,
      "cache-control": FINGERPRINTED.test(clean)
        ? "public, max-age=31536000, immutable"
        : "no-cache",
      "x-content-type-options": "nosniff",
    });
    if (file.type.startsWith("text/html")) headers.set("content-security-policy", HTML_CSP);
    if (isWidgetFile(clean)) {
      // Read by pages on other sites: the relay's `same-site` default would block them.
      headers.set("cross-origin-resource-policy", "cross-origin");
      // The chunk is a module, fetched with CORS; the answer depends on who asks.
      headers.set("vary", "Origin");
      if (origin && this.#allowedOrigins.includes(origin)) {
        headers.set("access-control-allow-origin", origin);
      }
    }
    if (ifNoneMatch === file.etag) return new Response(null, { status: 304, headers });
    return new Response(file.body, { headers });
  }

  async #load(relPath: string): Promise<CachedFile | null> {
    const cached = this.#cache.get(relPath);
    if (cached) return cached;
    try {
      const body = await Deno.readFile(join(this.#root, relPath));
      const etag = `"${sha256Hex(body).slice(0, 24)}"`;
      const file = { body, etag, type: TYPES[extname(relPath)] ?? "application/octet-stream" };
      // Only files that exist are cached, so probing random paths cannot grow memory.
      this.#cache.set(relPath, file);
      return file;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.IsADirectory) {
        return null;
      }
      throw error;
    }
  }
}
