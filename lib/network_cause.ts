/**
 * Why a network request failed, in a few words an operator can act on ("connection
 * refused", "the name does not resolve"). `fetch` throws `TypeError: fetch failed` and
 * the SDKs wrap that again ("Connection error."); the real cause sits in the `cause`
 * chain, inside a long hyper message (issue 15: the page read `Health check failed:
 * TypeError`, the error's name).
 */

/** Known causes, matched against every message in the error's cause chain. */
const CAUSES: [RegExp, string][] = [
  [/connection refused/i, "connection refused"],
  [
    /dns error|failed to lookup address|name or service not known|no address associated/i,
    "the name does not resolve",
  ],
  [/timed? ?out|TimeoutError|deadline/i, "timed out"],
  [/connection reset/i, "connection reset"],
  [/network is unreachable|no route to host/i, "no route to the host"],
  [/certificate|invalid peer|tls|ssl/i, "TLS failed"],
  [/requires net access|NotCapable/i, "not allowed by the --allow-net grant"],
  [/requests to port \d+ are blocked/i, "the port is blocked by Deno"],
];
const MAX_DEPTH = 6;
const MAX_CHARS = 160;

/** The messages of `error` and its causes, outermost first. */
function messages(error: unknown): string[] {
  const out: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < MAX_DEPTH && current != null; depth++) {
    if (current instanceof Error) {
      out.push(`${current.name}: ${current.message}`);
      current = current.cause;
    } else {
      out.push(String(current));
      break;
    }
  }
  return out;
}

/** A short cause for a failed request: a known phrase, else the innermost message. */
export function networkCause(error: unknown): string {
  const chain = messages(error);
  for (const [pattern, cause] of CAUSES) {
    if (chain.some((m) => pattern.test(m))) return cause;
  }
  const innermost = (error instanceof Error ? chain.at(-1) : String(error)) ?? "unknown error";
  const text = innermost.replace(/^(Error|TypeError): /, "");
  return text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS)}…` : text;
}
