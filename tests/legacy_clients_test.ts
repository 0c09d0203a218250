/**
 * The original deployment's clients against the real relay process (SPEC §3 "Legacy
 * compatibility, exactly"). Each client below is modelled, from its source, on what the
 * original React page, Python worker and `scripts/smoke-terra.sh` send and how they read
 * the answers; none of this file uses the relay's own code to build what it sends.
 *
 * - The page: visitor calls with `accessCode` in the query or body, a socket at
 *   `/api/chat?chatId=…&accessCode=…` whose frames it sorts as `workerState`,
 *   `assistantChunk` (appending `content`), or else a chat message (sorted by
 *   `createdAt.localeCompare`, shown with `new Date(createdAt)`), and `/api/health` chain
 *   links looked up by `id`.
 * - The worker: `x-service-token`, bodies sent as httpx 0.27 does (`json.dumps(body)`:
 *   ", "/": " separators, ASCII escapes, insertion order), signed when HMAC is on with hex
 *   HMAC-SHA256 over `METHOD\nPATH\nTS\n` + `json.dumps(body, separators=(",", ":"),
 *   sort_keys=True)`, and an unsigned updates socket that only reads `chat_activity`.
 * - The smoke script: `curl -fsSL` of health (with the code), open chats and
 *   `/api/metrics` (with the service token) under the base path.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  assertError,
  type Json,
  RecordingSocket,
  request,
  visitorSocket,
  visitorToken,
  workerRequest,
} from "./_clients.ts";
import { freePort, startRelay, TEST_SECRETS, withRelay } from "./_relay_process.ts";

const CODE = TEST_SECRETS.CHAT_PASSWORD;
const SERVICE = TEST_SECRETS.SERVICE_TOKEN;
const HMAC_SECRET = "legacy-hmac-0123456789abcdef0123456789abcdef";
const wsBase = (url: string) => url.replace(/^http/, "ws");

// ---------------------------------------------------------------------------------------
// Python's json.dumps, as far as the original worker's bodies need it

/** A Python float, written as Python's repr writes it (JavaScript would print 1.0 as 1). */
class PyFloat {
  constructor(readonly repr: string) {}
}
type Py = null | boolean | number | string | PyFloat | Py[] | { [key: string]: Py };

function pyString(s: string): string {
  const short: Record<string, string> = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
  };
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const unit = s.charCodeAt(i);
    out += short[ch] ??
      (unit >= 0x20 && unit <= 0x7e ? ch : `\\u${unit.toString(16).padStart(4, "0")}`);
  }
  return `"${out}"`;
}

/** `json.dumps(value)` (httpx's wire form), or with `canonical` the signed form. */
function pyDumps(value: Py, canonical: boolean): string {
  const [comma, colon] = canonical ? [",", ":"] : [", ", ": "];
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (value instanceof PyFloat) return value.repr;
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new Error("use PyFloat for floats");
    return String(value);
  }
  if (typeof value === "string") return pyString(value);
  if (Array.isArray(value)) return `[${value.map((v) => pyDumps(v, canonical)).join(comma)}]`;
  let keys = Object.keys(value);
  if (canonical) {
    keys = keys.sort((a, b) => {
      const [ca, cb] = [[...a].map((c) => c.codePointAt(0)!), [...b].map((c) => c.codePointAt(0)!)];
      for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
        if (ca[i] !== cb[i]) return ca[i]! - cb[i]!;
      }
      return ca.length - cb.length;
    });
  }
  return `{${
    keys.map((k) => `${pyString(k)}${colon}${pyDumps(value[k]!, canonical)}`).join(comma)
  }}`;
}

async function hmacHex(secret: string, text: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(text)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------------------------------
// The original worker (packages/terrarium-client/src/relay_client.py)

class OriginalWorker {
  constructor(
    readonly apiBaseUrl: string,
    readonly hmacSecret = "",
    readonly serviceToken: string = SERVICE,
  ) {}

  /** `RelayClient._headers`. */
  async headers(method: string, path: string, body?: Py, nowMs = Date.now()) {
    const headers: Record<string, string> = { "x-service-token": this.serviceToken };
    if (!this.hmacSecret) return headers;
    const timestamp = String(Math.floor(nowMs / 1000));
    const bodyStr = body === undefined ? "" : pyDumps(body, true);
    const payload = [method.toUpperCase(), path, timestamp, bodyStr].join("\n");
    headers["x-signature"] = await hmacHex(this.hmacSecret, payload);
    headers["x-signature-ts"] = timestamp;
    headers["x-signature-scope"] = "terra-worker";
    return headers;
  }

  /** One call as httpx sends it; `raise_for_status()` then `.json()`. */
  async call(method: "GET" | "POST", path: string, body?: Py): Promise<Json> {
    const res = await this.raw(method, path, body, await this.headers(method, path, body));
    if (res.status >= 400) {
      throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    }
    return res.body;
  }

  raw(method: "GET" | "POST", path: string, body: Py | undefined, headers: Record<string, string>) {
    const init = body === undefined ? { method, headers } : {
      method,
      headers: { ...headers, "content-type": "application/json" },
      rawBody: pyDumps(body, false),
    };
    return request(`${this.apiBaseUrl}${path}`, init);
  }

  async fetchOpenChats(): Promise<string[]> {
    return (await this.call("GET", "/api/chats/open")).chatIds ?? [];
  }
  fetchMessages(chatId: string): Promise<Json[]> {
    return this.call("GET", `/api/chat/${chatId}/messages`);
  }
  postAgentMessage(chatId: string, content: string) {
    return this.call("POST", `/api/chat/${chatId}/agent`, { content });
  }
  postAgentChunk(chatId: string, content: string, done = false) {
    return this.call("POST", `/api/chat/${chatId}/agent-chunk`, { content, done });
  }
  postWorkerStatus(body: Py) {
    return this.call("POST", "/api/worker/status", body);
  }
  postWorkerState(chatId: string, state: string, detail?: string) {
    const payload: Record<string, Py> = { state };
    if (detail) payload.detail = detail;
    return this.call("POST", `/api/chat/${chatId}/worker-state`, payload);
  }

  /** `_worker_updates_loop`: the service token header only, never signed. */
  updates(): RecordingSocket {
    return new RecordingSocket(`${wsBase(this.apiBaseUrl)}/api/worker/updates`, {
      "x-service-token": this.serviceToken,
    });
  }
}

/** `WorkerStatusReport.to_payload()` after `mark()`: utcnow() isoformat, None, float latency. */
const STATUS_REPORT: Py = {
  agentApi: {
    status: "online",
    detail: null,
    checkedAt: "2026-12-01T21:49:30.158299",
    latencyMs: null,
  },
  llm: {
    status: "online",
    detail: "Müde — 😴",
    checkedAt: "2026-12-01T21:49:31",
    latencyMs: new PyFloat("1.0"),
  },
};

// ---------------------------------------------------------------------------------------
// The original page (packages/web-frontend/src/App.tsx)

const CHAIN_ORDER = ["frontend", "relay", "worker", "agent", "llm"];

class OriginalPage {
  socket: RecordingSocket | null = null;
  /** Every frame the socket delivered, as parsed JSON. */
  frames: Json[] = [];
  messages: Json[] = [];
  /** What the page would throw on (the original page's RangeError/TypeError). */
  errors: string[] = [];
  workerState: Json = { state: "idle", detail: null, updatedAt: null };
  stream = "";
  streaming = false;
  /** Every non-empty chunk content appended during this page's life. */
  appended: string[] = [];
  #seen = new Set<string>();
  #handled = 0;

  constructor(readonly apiBase: string, readonly chatId: string, readonly accessCode = CODE) {}

  /** `buildWsUrl('/api/chat', { chatId, accessCode })`. */
  connect(): RecordingSocket {
    const url = new URL(`${wsBase(this.apiBase)}/api/chat`);
    url.searchParams.set("chatId", this.chatId);
    url.searchParams.set("accessCode", this.accessCode);
    this.socket = new RecordingSocket(url.toString());
    this.#handled = 0;
    return this.socket;
  }

  /** Feeds the frames received so far through `socket.onmessage`. */
  pump(): void {
    const events = this.socket?.events ?? [];
    for (; this.#handled < events.length; this.#handled++) this.#onMessage(events[this.#handled]);
  }

  async waitFor(what: string, predicate: (page: OriginalPage) => boolean): Promise<void> {
    await this.socket!.waitFor(
      () => {
        this.pump();
        return predicate(this);
      },
      10_000,
      what,
    );
  }

  #onMessage(payload: Json): void {
    this.frames.push(payload);
    if (payload?.type === "workerState") {
      if (payload.chatId !== this.chatId) return;
      this.workerState = {
        state: payload.state ?? "idle",
        detail: payload.detail ?? null,
        updatedAt: payload.updatedAt ?? null,
      };
      return;
    }
    if (payload?.type === "assistantChunk") {
      if (payload.chatId !== this.chatId) return;
      if (payload.done) {
        this.streaming = false;
        this.stream = "";
        return;
      }
      this.streaming = true;
      this.stream += payload.content;
      this.appended.push(payload.content);
      return;
    }
    this.#addMessage(payload);
  }

  /** `handleAddMessage`, plus the render of the message's time. */
  #addMessage(msg: Json): void {
    if (this.#seen.has(msg.id)) return;
    this.#seen.add(msg.id);
    if (typeof msg.createdAt !== "string") {
      this.errors.push(`TypeError: createdAt.localeCompare on ${JSON.stringify(msg)}`);
      return;
    }
    if (Number.isNaN(new Date(msg.createdAt).getTime())) {
      this.errors.push(`RangeError: Invalid time value for ${JSON.stringify(msg)}`);
      return;
    }
    this.messages.push(msg);
    this.messages.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    if (msg.sender === "Terra") {
      this.stream = "";
      this.streaming = false;
    }
  }

  /** The send form: `fetch(messages, {method: 'POST', body: {content, accessCode}})`, `response.ok`. */
  async send(content: string): Promise<Json> {
    const res = await request(`${this.apiBase}/api/chat/${this.chatId}/messages`, {
      body: { content, accessCode: this.accessCode },
    });
    assert(res.status >= 200 && res.status < 300, `send → ${res.status}`);
    assert(!Number.isNaN(new Date(res.body.createdAt).getTime()), "setLastAckAt(new Date(...))");
    return res.body;
  }

  async history(): Promise<Json[]> {
    const url = new URL(`${this.apiBase}/api/chat/${this.chatId}/messages`);
    url.searchParams.set("accessCode", this.accessCode);
    const res = await request(url.toString());
    assertEquals(res.status, 200);
    return res.body;
  }

  /** The health poll: `normalizeChain` then `deriveLlmStatus` ("ready" = Terra is listening). */
  async health(): Promise<{ llmStatus: string; chain: Json[]; payload: Json }> {
    const url = new URL(`${this.apiBase}/api/health`);
    url.searchParams.set("accessCode", this.accessCode);
    const res = await request(url.toString());
    assert(res.status >= 200 && res.status < 300, `health → ${res.status}`);
    const payload = res.body;
    const byId = new Map<string, Json>((payload.chain ?? []).map((n: Json) => [n.id, n]));
    const chain: Json[] = CHAIN_ORDER.map((id) =>
      byId.get(id) ?? { id, label: "?", status: "unknown" }
    );
    const [worker, agent, llm] = ["worker", "agent", "llm"].map((id) =>
      chain.find((n) => n.id === id)
    );
    const nodes = [worker, agent, llm];
    const llmStatus = nodes.every((n) => n?.status === "online")
      ? "ready"
      : nodes.some((n) => n?.status === "offline")
      ? "offline"
      : "checking";
    return { llmStatus, chain, payload };
  }
}

/** Every frame a legacy socket got has exactly one of the original relay's shapes. */
function assertOriginalShapes(frames: Json[]): void {
  const shapes = [
    ["chatId", "content", "createdAt", "id", "sender"],
    ["chatId", "detail", "state", "type", "updatedAt"],
    ["chatId", "content", "done", "emittedAt", "type"],
  ].map((keys) => keys.join(","));
  for (const frame of frames) {
    const keys = Object.keys(frame).sort().join(",");
    assert(shapes.includes(keys), `not an original frame: ${JSON.stringify(frame)}`);
    if ("sender" in frame) assert(["Visitor", "Terra"].includes(frame.sender), "sender");
    else if (frame.type === "workerState") {
      assert(frame.detail === null || typeof frame.detail === "string", "detail");
    } else {
      assertEquals([frame.type, typeof frame.content, typeof frame.done], [
        "assistantChunk",
        "string",
        "boolean",
      ]);
    }
  }
}

// ---------------------------------------------------------------------------------------

Deno.test("the original smoke script's steps pass under the base path, /api/metrics answering JSON", async () => {
  await withRelay({ BASE_PATH: "/terrarium" }, async (relay) => {
    const BASE = `${relay.url}/terrarium`;
    const worker = new OriginalWorker(BASE).updates();
    await worker.opened;
    const page = new OriginalPage(BASE, "smoke-chat");
    page.connect();
    await page.socket!.opened;

    // `curl -fsSL` fails on any status of 400 or more and follows redirects.
    const curl = async (url: string, headers: Record<string, string> = {}) => {
      const res = await fetch(url, { headers, redirect: "follow" });
      const text = await res.text();
      assert(res.status < 400, `${url} → ${res.status} ${text}`);
      return JSON.parse(text);
    };
    const health = await curl(`${BASE}/api/health?accessCode=${CODE}`);
    assertEquals(health.relay, "ok");
    const open = await curl(`${BASE}/api/chats/open`, { "x-service-token": SERVICE });
    assertEquals(open, { chatIds: [] });

    let snapshot: Json = null;
    for (let i = 0; i < 50; i++) {
      snapshot = await curl(`${BASE}/api/metrics`, { "x-service-token": SERVICE });
      if (snapshot.ws.chatConnections === 1 && snapshot.ws.workerConnections === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // The original sections and fields, as the original relay named them.
    for (const key of ["requests", "errors", "avgLatencyMs"]) {
      assertEquals(typeof snapshot.http[key], "number", `http.${key}`);
    }
    for (const key of ["queueLength", "dropped"]) {
      assertEquals(typeof snapshot.logs[key], "number", `logs.${key}`);
    }
    assert(snapshot.http.requests >= 2, "the smoke script's own requests are counted");
    assertEquals([snapshot.ws.chatConnections, snapshot.ws.workerConnections], [1, 1]);
    assertEquals(snapshot.ws.chats, { "smoke-chat": 1 });
    assert(Array.isArray(snapshot.logs.recent) && snapshot.logs.recent.length > 0, "recent logs");
    const text = JSON.stringify(snapshot);
    for (const secret of Object.values(TEST_SECRETS)) assert(!text.includes(secret), "no secret");

    // Protected like /metrics, which stays Prometheus text.
    assertError(await request(`${BASE}/api/metrics`), 401, "missing_credentials");
    const admin = await request(`${BASE}/api/metrics`, {
      headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` },
    });
    assertEquals([admin.status, typeof admin.body.http], [200, "object"]);
    const prom = await request(`${relay.url}/metrics`, { headers: { "x-service-token": SERVICE } });
    assert(String(prom.body).includes("# TYPE terrarium_http_requests_total counter"), "prom");
    await page.socket!.close();
    await worker.close();
  });
});

Deno.test("health carries the original page's id and label, and status posts with nulls turn 'listening' on", async () => {
  await withRelay({}, async (relay) => {
    const page = new OriginalPage(relay.url, "health-chat");
    const before = await page.health();
    assertEquals(before.payload.relay, "ok");
    assertEquals(before.payload.chain.map((n: Json) => n.id), CHAIN_ORDER);
    for (const node of before.payload.chain) {
      for (const key of ["id", "label", "status", "detail", "checkedAt", "latencyMs"]) {
        assert(key in node, `${node.id}.${key}`);
      }
      assertEquals(node.name, node.id, "our page's `name` stays");
      assert(typeof node.label === "string" && node.label.length > 0, "a label to show");
    }
    assertEquals(before.llmStatus, "offline", "no worker yet");

    const worker = new OriginalWorker(relay.url);
    assertEquals(pyDumps(STATUS_REPORT, false).includes('"latencyMs": 1.0'), true);
    assertEquals(await worker.postWorkerStatus(STATUS_REPORT), { ok: true });
    const after = await page.health();
    assertEquals(after.llmStatus, "ready", "Terra is listening");
    const agent = after.chain.find((n) => n.id === "agent");
    const llm = after.chain.find((n) => n.id === "llm");
    // Python's zone-less utcnow() times are read as UTC.
    assertEquals([agent.checkedAt, agent.latencyMs], ["2026-12-01T21:49:30.158Z", null]);
    assertEquals([llm.checkedAt, llm.latencyMs, llm.detail], [
      "2026-12-01T21:49:31.000Z",
      1,
      "Müde — 😴",
    ]);

    // All-null details (the worker before its first probe) are fine; garbage times are not.
    const empty = { status: "unknown", detail: null, checkedAt: null, latencyMs: null };
    assertEquals(await worker.postWorkerStatus({ agentApi: empty, llm: empty }), { ok: true });
    const bad = await worker.raw("POST", "/api/worker/status", {
      agentApi: { ...empty, checkedAt: "yesterday" },
      llm: empty,
    }, await worker.headers("POST", "/api/worker/status"));
    assertError(bad, 400, "invalid_body");
  });
});

Deno.test("a legacy socket sees only the original frames while our worker streams reasoning and tools", async () => {
  await withRelay({}, async (relay) => {
    const chatId = "mixed-chat";
    const page = new OriginalPage(relay.url, chatId);
    page.connect();
    await page.socket!.opened;
    const token = await visitorToken(relay.url);
    const ours = await visitorSocket(relay.url, chatId, token);

    const sent = await page.send("What are you thinking?");
    await page.waitFor("own message", (p) => p.messages.some((m) => m.id === sent.id));

    // Our worker: claim, then reasoning, tool activity and answer chunks with offsets.
    const claim = await workerRequest(relay.url, "/api/worker/turns/claim", {
      workerId: "w-ours",
      chatId,
    });
    const turn = claim.body.turn;
    const chunk = (body: Record<string, unknown>) =>
      workerRequest(relay.url, `/api/chat/${chatId}/agent-chunk`, {
        turnId: turn.id,
        leaseId: turn.leaseId,
        ...body,
      });
    for (
      const body of [
        { kind: "reasoning", offset: 0, content: "Thinking about: the question" },
        { kind: "tool", offset: 0, content: "Searching the site…\n" },
        { kind: "answer", offset: 0, content: "Hello" },
        { kind: "reasoning", offset: 28, content: " and more" },
        { kind: "answer", offset: 5, content: ", wörld" },
      ]
    ) assertEquals((await chunk(body)).status, 200);
    await page.waitFor("answer text", (p) => p.stream === "Hello, wörld");
    assertEquals(
      (await chunk({ kind: "answer", offset: 12, content: "", done: true })).status,
      200,
    );
    const reply = await workerRequest(relay.url, `/api/chat/${chatId}/agent`, {
      content: "Hello, wörld",
      replyTo: turn.id,
      leaseId: turn.leaseId,
    });
    assert(reply.status === 200 || reply.status === 201, "2xx");
    await page.waitFor("Terra's reply", (p) => p.messages.some((m) => m.sender === "Terra"));

    assertEquals(page.errors, []);
    assertOriginalShapes(page.frames);
    assertEquals(page.appended.join(""), "Hello, wörld", "answer text only");
    assert(page.frames.some((f) => f.type === "assistantChunk" && f.done), "the final done");
    assertEquals([page.stream, page.streaming], ["", false]);
    assertEquals(page.messages.map((m) => m.sender), ["Visitor", "Terra"]);

    // Our page's socket still gets ready, sequence numbers and every kind.
    await ours.waitFor((es) => es.some((e) => e.type === "message" && e.sender === "Terra"));
    assert(ours.events.some((e) => e.type === "ready"), "ready");
    const kinds = new Set(
      ours.events.filter((e) => e.type === "assistantChunk").map((e) => e.kind),
    );
    assertEquals([...kinds].sort(), ["answer", "reasoning", "tool"]);
    assert(ours.events.filter((e) => e.type !== "ready").every((e) => typeof e.seq === "number"));

    // A reconnect (the page does one after any close) replays messages, never `ready`.
    await page.socket!.close();
    const again = new OriginalPage(relay.url, chatId);
    again.connect();
    await again.waitFor("replayed reply", (p) => p.messages.length === 2);
    assertEquals(again.errors, []);
    assertOriginalShapes(again.frames);
    assertEquals(again.appended, []);
    await again.socket!.close();
    await ours.close();
  });
});

Deno.test("the original HMAC scheme is accepted beside ours; wrong, stale and unsigned requests are refused", async () => {
  await withRelay({ HMAC_ENABLED: "true", HMAC_SECRET, BASE_PATH: "/terrarium" }, async (relay) => {
    const worker = new OriginalWorker(relay.url, HMAC_SECRET);
    // Behind the base path the original worker still signs the path from /api on.
    const underBase = new OriginalWorker(`${relay.url}/terrarium`, HMAC_SECRET);
    assertEquals(await underBase.fetchOpenChats(), []);
    assertEquals(await underBase.postWorkerStatus(STATUS_REPORT), { ok: true });
    // The test's model of json.dumps against what CPython printed for this body.
    assertEquals(
      pyDumps(STATUS_REPORT, true),
      '{"agentApi":{"checkedAt":"2026-12-01T21:49:30.158299","detail":null,"latencyMs":null,' +
        '"status":"online"},"llm":{"checkedAt":"2026-12-01T21:49:31","detail":' +
        '"M\\u00fcde \\u2014 \\ud83d\\ude34","latencyMs":1.0,"status":"online"}}',
    );
    assertEquals(await worker.fetchOpenChats(), []);
    assertEquals(await worker.postWorkerStatus(STATUS_REPORT), { ok: true });
    const nested: Py = {
      agentApi: { status: "online", detail: 'Ünïcödé\t"quoted" 日本 🌿', latencyMs: 3 },
      llm: {
        status: "degraded",
        detail: "z\u007f",
        checkedAt: null,
        latencyMs: new PyFloat("1e-05"),
      },
    };
    assertEquals(await worker.postWorkerStatus(nested), { ok: true });

    const path = "/api/worker/status";
    const good = await worker.headers("POST", path, STATUS_REPORT);
    const wrongSecret = await new OriginalWorker(relay.url, "not-the-secret").headers(
      "POST",
      path,
      STATUS_REPORT,
    );
    assertError(await worker.raw("POST", path, STATUS_REPORT, wrongSecret), 401, "bad_signature");
    // The same signature over a changed body (one character of the nested detail).
    const changed = structuredClone(nested) as Record<string, Record<string, Py>>;
    changed.agentApi!.detail = 'Ünïcödé\t"quoted" 日本 🌱';
    const signedNested = await worker.headers("POST", path, nested);
    assertError(await worker.raw("POST", path, changed, signedNested), 401, "bad_signature");
    const stale = await worker.headers("POST", path, STATUS_REPORT, Date.now() - 3_600_000);
    assertError(await worker.raw("POST", path, STATUS_REPORT, stale), 401, "bad_signature");
    const { "x-signature": _sig, ...unsigned } = good;
    assertError(await worker.raw("POST", path, STATUS_REPORT, unsigned), 401, "bad_signature");
    // Another route cannot borrow a signature.
    assertError(
      await worker.raw("POST", "/api/chat/x/worker-state", STATUS_REPORT, good),
      401,
      "bad_signature",
    );

    // Ours still works and stays the default.
    const ours = await workerRequest(relay.url, "/api/chats/open", undefined, {
      hmacSecret: HMAC_SECRET,
    });
    assertEquals(ours.status, 200);

    // Metrics honour HMAC: the bare service token no longer opens them.
    for (const url of [`${relay.url}/metrics`, `${relay.url}/api/metrics`]) {
      assertError(
        await request(url, { headers: { "x-service-token": SERVICE } }),
        401,
        "bad_signature",
      );
      const admin = await request(url, {
        headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` },
      });
      assertEquals(admin.status, 200);
    }
    const signedMetrics = await worker.call("GET", "/api/metrics");
    assertEquals(typeof signedMetrics.http.requests, "number");
  });
});

Deno.test("a full legacy turn: the original page's message, the original worker's calls, one stored reply", async () => {
  await withRelay({ HMAC_ENABLED: "true", HMAC_SECRET }, async (relay) => {
    const chatId = crypto.randomUUID(); // the original page's chat ids
    const page = new OriginalPage(relay.url, chatId);
    page.connect();
    await page.socket!.opened;
    // Our page on the same chat, beside the original one.
    const ours = await visitorSocket(relay.url, chatId, await visitorToken(relay.url));
    const worker = new OriginalWorker(relay.url, HMAC_SECRET);
    const updates = worker.updates();
    await updates.opened;

    const sent = await page.send("Hallo Terra, wie geht's? 🌿");
    const activity = await updates.waitFor(
      (es) => es.some((e) => e.type === "chat_activity" && e.chatId === chatId),
      10_000,
      "chat_activity",
    );
    assertEquals(activity.find((e) => e.type === "chat_activity").messageId, sent.id);

    // `tick` and `_sync_chat`, then `_handle_visitor_message` in the original's order.
    assert((await worker.fetchOpenChats()).includes(chatId), "the chat is open");
    const messages = await worker.fetchMessages(chatId);
    const pending = messages.filter((m: Json) => m.sender === "Visitor");
    assertEquals(pending.map((m: Json) => m.id), [sent.id]);
    await worker.postWorkerState(chatId, "processing");
    await worker.postAgentChunk(chatId, "Mir geht's ");
    await worker.postAgentChunk(chatId, "gut — danke! 😀");
    await page.waitFor("streamed answer", (p) => p.stream === "Mir geht's gut — danke! 😀");
    const replyPath = `/api/chat/${chatId}/agent`;
    const replyBody: Py = { content: "Mir geht's gut — danke! 😀" };
    const replyHeaders = await worker.headers("POST", replyPath, replyBody);
    const reply = await worker.raw("POST", replyPath, replyBody, replyHeaders);
    assert(reply.status >= 200 && reply.status < 300, `reply → ${reply.status}`);
    await worker.postAgentChunk(chatId, "", true);
    await worker.postWorkerState(chatId, "responded");
    await worker.postWorkerStatus(STATUS_REPORT);

    await page.waitFor(
      "reply, done and responded",
      (p) =>
        p.messages.some((m) => m.sender === "Terra") && p.workerState.state === "responded" &&
        p.frames.some((f) => f.type === "assistantChunk" && f.done),
    );
    assertEquals(page.errors, []);
    assertOriginalShapes(page.frames);
    assertEquals(page.messages.map((m) => [m.sender, m.content]), [
      ["Visitor", "Hallo Terra, wie geht's? 🌿"],
      ["Terra", "Mir geht's gut — danke! 😀"],
    ]);
    // Our page: the reply ended the answer; the worker's late empty `done` opens no new one
    // (it would show an empty answer, typing, until the next question).
    await ours.waitFor(
      (es) => es.some((e) => e.type === "workerState" && e.state === "responded"),
      10_000,
      "responded on our page",
    );
    const replyAt = ours.events.findIndex((e) => e.type === "message" && e.sender === "Terra");
    assert(replyAt > 0, "our page got the reply");
    assertEquals(
      ours.events.slice(replyAt).filter((e) => e.type === "assistantChunk"),
      [],
      "no chunk after the reply",
    );
    ours.socket.close();

    // A captured reply sent again inside the skew window is refused: stored once.
    assertError(await worker.raw("POST", replyPath, replyBody, replyHeaders), 401, "bad_signature");
    const history = await page.history();
    assertEquals(history.map((m: Json) => m.sender), ["Visitor", "Terra"]);
    assert(!(await worker.fetchOpenChats()).includes(chatId), "answered");
    assertEquals((await page.health()).llmStatus, "ready");

    // The unsigned updates socket only listens: it cannot do a worker's work.
    updates.send({ type: "reply", requestId: "r1", chatId, content: "forged" });
    await updates.waitFor((es) => es.some((e) => e.type === "ack"), 10_000, "ack");
    assertEquals((await page.history()).length, 2);
    await updates.close();
    await page.socket!.close();
  });
});

Deno.test("a page on a refused origin is logged once per minute with the expected origins", async () => {
  await withRelay({}, async (relay) => {
    for (let i = 0; i < 3; i++) {
      const socket = new RecordingSocket(
        `${wsBase(relay.url)}/api/chat?chatId=o-chat&accessCode=${CODE}`,
        { origin: "https://elsewhere.example" },
      );
      assertEquals(await socket.waitClosed(), 1008);
    }
    const warnings = relay.lines.filter((l) => l.includes("websocket origin refused"));
    assertEquals(warnings.length, 1, warnings.join("\n"));
    const line = JSON.parse(warnings[0]!);
    assertEquals(line.origin, "https://elsewhere.example");
    assert(String(line.allowedOrigins).includes("unset"), line.allowedOrigins);
    assert(String(line.hint).includes("ALLOWED_ORIGINS"), "names the setting");
  });
});

Deno.test("behind the original nginx locations, the smoke script and a legacy turn still work", async () => {
  await withRelay({ BASE_PATH: "/terrarium" }, async (relay) => {
    const dir = await Deno.makeTempDir({ prefix: "terrarium-nginx-legacy-" });
    const port = freePort();
    const upstream = `http://127.0.0.1:${relay.port}`;
    // The original DEPLOYMENT.md locations (nginx strips /terrarium), ports changed only.
    const socketLocation = (path: string) =>
      `    location /terrarium${path} {\n      proxy_pass ${upstream}${path};\n` +
      `      proxy_http_version 1.1;\n      proxy_set_header Upgrade $http_upgrade;\n` +
      `      proxy_set_header Connection "upgrade";\n      proxy_set_header Host $host;\n    }\n`;
    await Deno.writeTextFile(
      join(dir, "nginx.conf"),
      `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n` +
        `  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n` +
        `  server {\n    listen 127.0.0.1:${port};\n    server_name localhost;\n` +
        `    location /terrarium/api/ {\n      proxy_pass ${upstream}/api/;\n` +
        `      proxy_set_header Host $host;\n      proxy_set_header X-Real-IP $remote_addr;\n    }\n` +
        socketLocation("/api/chat") + socketLocation("/api/worker/updates") + `  }\n}\n`,
    );
    const nginx = new Deno.Command("nginx", {
      args: ["-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off; master_process off;"],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      const BASE = `http://127.0.0.1:${port}/terrarium`;
      let health: Json = null;
      for (let i = 0; i < 100 && !health; i++) {
        health = await request(`${BASE}/api/health?accessCode=${CODE}`).then(
          (r) => r.status === 200 ? r.body : null,
          () => null,
        );
        if (!health) await new Promise((r) => setTimeout(r, 50));
      }
      assertEquals(health?.relay, "ok", "nginx answers");
      const smoke = async (path: string) => {
        const res = await request(`${BASE}${path}`, { headers: { "x-service-token": SERVICE } });
        assertEquals(res.status, 200, path);
        return res.body;
      };
      assertEquals(await smoke("/api/chats/open"), { chatIds: [] });
      assertEquals(typeof (await smoke("/api/metrics")).http.requests, "number");

      const chatId = crypto.randomUUID();
      const page = new OriginalPage(BASE, chatId);
      // A browser on the site's own host sends its Origin; nginx passes `Host $host`.
      page.socket = new RecordingSocket(
        `${wsBase(BASE)}/api/chat?chatId=${chatId}&accessCode=${CODE}`,
        { origin: "http://127.0.0.1" },
      );
      await page.socket.opened;
      const worker = new OriginalWorker(BASE);
      const updates = worker.updates();
      await updates.waitFor((es) => es.some((e) => e.type === "hello"), 10_000, "hello");

      const sent = await page.send("Through the old nginx?");
      await updates.waitFor((es) => es.some((e) => e.messageId === sent.id), 10_000, "activity");
      assertEquals((await worker.fetchMessages(chatId)).map((m: Json) => m.id), [sent.id]);
      await worker.postWorkerState(chatId, "processing");
      await worker.postAgentChunk(chatId, "Yes, ");
      await worker.postAgentMessage(chatId, "Yes, through it.");
      await worker.postAgentChunk(chatId, "", true);
      await worker.postWorkerState(chatId, "responded");
      await page.waitFor(
        "the reply",
        (p) => p.messages.some((m) => m.sender === "Terra") && p.workerState.state === "responded",
      );
      assertEquals(page.errors, []);
      assertOriginalShapes(page.frames);
      assertEquals(page.appended, ["Yes, "]);
      assertEquals((await page.history()).map((m: Json) => m.content), [
        "Through the old nginx?",
        "Yes, through it.",
      ]);
      await Promise.all([page.socket.close(), updates.close()]);
    } finally {
      nginx.kill("SIGTERM");
      await nginx.status;
      await nginx.stderr.cancel();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
});

Deno.test("after a relay restart mid-answer the original page reconnects to original frames only", async () => {
  let relay = await startRelay({});
  const { dir, port } = relay;
  try {
    const chatId = crypto.randomUUID();
    const page = new OriginalPage(relay.url, chatId);
    page.connect();
    await page.socket!.opened;
    const worker = new OriginalWorker(relay.url);
    const sent = await page.send("Tell me a story");
    assert((await worker.fetchOpenChats()).includes(chatId), "open");
    await worker.postWorkerState(chatId, "processing");
    await worker.postAgentChunk(chatId, "Once upon ");
    await page.waitFor("the first words", (p) => p.stream === "Once upon ");

    // SIGTERM: sockets get 1001, so the page reconnects (it does on any code but 1000).
    assertEquals(await relay.stop(), 0);
    assertEquals(await page.socket!.waitClosed(), 1001);
    relay = await startRelay({}, { dir, port });
    page.connect();
    await page.waitFor("the state again", (p) => p.socket!.events.length > 0);
    await worker.postAgentChunk(chatId, "a time.");
    await page.waitFor("more words", (p) => p.stream === "Once upon a time.");
    await worker.postAgentMessage(chatId, "Once upon a time.");
    await worker.postAgentChunk(chatId, "", true);
    await page.waitFor("the reply", (p) => p.messages.some((m) => m.sender === "Terra"));

    assertEquals(page.errors, []);
    assertOriginalShapes(page.frames);
    assertEquals(page.messages.map((m) => m.id)[0], sent.id);
    assertEquals((await page.history()).map((m: Json) => m.sender), ["Visitor", "Terra"]);
    await page.socket!.close();
  } finally {
    await relay.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
