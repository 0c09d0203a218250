/**
 * Serves the page's static files from `WEB_DIR` with validators: a strong ETag from the
 * content hash (304 on `If-None-Match`), `no-cache` for HTML so a deploy shows at once,
 * and a long max-age for assets whose names carry their hash.
 */
import { extname, join, normalize } from "node:path";
import { sha256Hex } from "../hmac.ts";
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

interface CachedFile {
  body: Uint8Array<ArrayBuffer>;
  etag: string;
  type: string;
}

export class StaticFiles {
  #root: string;
  #cache = new Map<string, CachedFile>();

  constructor(root: string) {
    this.#root = normalize(root);
  }

  /** The response for `relPath` ("" is index.html), or null when there is no such file. */
  async serve(relPath: string, ifNoneMatch: string | null): Promise<Response | null> {
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
    if (ifNoneMatch === file.etag) return new Response(null, { status: 304, headers });
    return new Response(file.body, { headers });
  }

  async #load(relPath: string): Promise<CachedFile | null> {
    const cached = this.#cache.get(relPath);
    if (cached) return cached;
    try {
      const body = await Deno.readFile(join(this.#root, relPath));
      const etag = `"${(await sha256Hex(body)).slice(0, 24)}"`;
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
