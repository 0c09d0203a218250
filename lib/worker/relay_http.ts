/**
 * The worker's HTTP transport to the relay: one request at a time, with the service token
 * and, when enabled, an HMAC signature over the exact bytes sent (also used to sign the
 * socket's handshake), a timeout and a capped response.
 */
import { signRequest } from "../hmac.ts";
import { ErrorBody } from "../protocol.ts";
import type { WorkerConfig } from "./config.ts";
import { readCapped } from "../read_capped.ts";
import { RelayRequestError } from "./relay_request_error.ts";

const HTTP_TIMEOUT_MS = 15_000;
const MAX_RESPONSE_BYTES = 16 << 20;

const encoder = new TextEncoder();
/** The body of a request without one (what a GET and the socket handshake sign). */
export const EMPTY_BODY = new Uint8Array();

/** HTTP to the relay, signed. */
export class RelayHttp {
  #config: WorkerConfig;
  #fetch: typeof fetch;
  #onUnauthorized: (error: RelayRequestError) => void;

  /** `onUnauthorized` hears of every 401 (the credentials are wrong: retrying cannot help). */
  constructor(
    config: WorkerConfig,
    options: { fetch: typeof fetch; onUnauthorized: (error: RelayRequestError) => void },
  ) {
    this.#config = config;
    this.#fetch = options.fetch;
    this.#onUnauthorized = options.onUnauthorized;
  }

  /** The worker's credential headers for a request of `method` to `url` with `body`. */
  async headers(method: string, url: URL, body: Uint8Array): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      "x-service-token": this.#config.serviceToken,
      "x-worker-id": this.#config.workerId,
    };
    if (this.#config.hmacEnabled) {
      const pathAndQuery = url.pathname + url.search;
      Object.assign(
        headers,
        await signRequest(this.#config.hmacSecret, method, pathAndQuery, body),
      );
    }
    return headers;
  }

  /**
   * Sends one request; resolves with the JSON of a 2xx answer, rejects with a
   * `RelayRequestError` carrying the relay's status and code (status 0: not reached).
   */
  async request(method: "GET" | "POST" | "PUT", path: string, body?: unknown): Promise<unknown> {
    const url = new URL(this.#config.apiBaseUrl + path);
    const raw = body === undefined ? EMPTY_BODY : encoder.encode(JSON.stringify(body));
    const headers = await this.headers(method, url, raw);
    if (body !== undefined) headers["content-type"] = "application/json";
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), HTTP_TIMEOUT_MS);
    let status: number;
    let text: string;
    try {
      const response = await this.#fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : raw,
        signal: controller.signal,
      });
      status = response.status;
      ({ text } = await readCapped(response.body, MAX_RESPONSE_BYTES));
    } catch (error) {
      const code = controller.signal.aborted ? "timeout" : "unreachable";
      throw new RelayRequestError(
        0,
        code,
        `Cannot reach the relay: ${method} ${url.pathname} failed (${code})`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch { /* not JSON: judged by the status below */ }
    if (status >= 200 && status < 300) return json;
    const problem = ErrorBody.safeParse(json);
    const error = new RelayRequestError(
      status,
      problem.success ? problem.data.code : `http_${status}`,
      problem.success ? problem.data.error : `The relay answered ${status} to ${method} ${path}`,
    );
    if (status === 401) this.#onUnauthorized(error);
    throw error;
  }
}
