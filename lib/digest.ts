/**
 * SHA-256 and constant-time comparison, one implementation each (issue 13). Synchronous
 * (node:crypto): a WebCrypto digest is an async op on the thread pool, and on the relay's
 * hot path those showed as its largest cost (docs/BENCHMARKS.md).
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** The SHA-256 of `data` (a string as UTF-8). */
export function sha256(data: string | Uint8Array): Uint8Array {
  return createHash("sha256").update(data).digest();
}

/** The SHA-256 of `data` as lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Whether `a` equals `digest` (a `sha256()` of the expected value, of `length` characters)
 * in time that does not depend on where they differ: hashing first hides both lengths.
 */
export function matchesDigest(a: string, digest: Uint8Array, length: number): boolean {
  return timingSafeEqual(sha256(a), digest) && a.length === length;
}

/** Constant-time string equality (see `matchesDigest`). */
export function constantTimeEqual(a: string, b: string): boolean {
  return matchesDigest(a, sha256(b), b.length);
}
