/**
 * Constant-time checks of a presented secret against one configured secret. The secret's
 * SHA-256 is computed once and the candidate's synchronously, so a request pays one small
 * hash instead of two WebCrypto digests (each an async op on the thread pool): the profile
 * of `POST /agent-chunk` under load showed those digests as the relay's largest cost
 * (docs/BENCHMARKS.md). Hashing first keeps the comparison independent of both lengths.
 */
import { matchesDigest, sha256 } from "../digest.ts";

export class SecretMatcher {
  #hash: Uint8Array;
  #length: number;

  constructor(secret: string) {
    this.#hash = sha256(secret);
    this.#length = secret.length;
  }

  /** Whether `candidate` is the secret, in time that does not depend on where they differ. */
  matches(candidate: string): boolean {
    return matchesDigest(candidate, this.#hash, this.#length);
  }
}
