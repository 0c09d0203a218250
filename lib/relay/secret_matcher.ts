/**
 * Constant-time checks of a presented secret against one configured secret. The loop runs
 * over every UTF-16 unit of the candidate, whatever it holds, and reads the secret cyclically,
 * so its time depends only on the candidate's length (which the sender knows) and never on the
 * secret's length or on where the two differ.
 *
 * No hash: a synchronous SHA-256 of the candidate (node:crypto, before this) cost about 4 µs per
 * request, 7 % of the relay's JavaScript time on `POST /agent-chunk`; this loop costs well under
 * 0.1 µs for a 64-character token (issue 18, docs/BENCHMARKS.md). Before that, two WebCrypto
 * digests per request had been the relay's largest cost.
 */
export class SecretMatcher {
  #secret: string;

  constructor(secret: string) {
    this.#secret = secret;
  }

  /** Whether `candidate` is the secret, in time that depends only on the candidate's length. */
  matches(candidate: string): boolean {
    const secret = this.#secret;
    const length = secret.length;
    // A length mismatch is folded into the result, not returned early.
    let diff = candidate.length ^ length;
    if (length === 0) return diff === 0;
    for (let i = 0, j = 0; i < candidate.length; i++) {
      diff |= candidate.charCodeAt(i) ^ secret.charCodeAt(j);
      if (++j === length) j = 0;
    }
    return diff === 0;
  }
}
