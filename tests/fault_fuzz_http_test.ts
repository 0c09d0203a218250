/**
 * Property-based fuzzing (fast-check) of every visitor and worker HTTP route of a running
 * relay process (issue 7, SPEC §3 errors): malformed and oversized bodies, headers, paths
 * and queries, with and without credentials. The relay answers bad input with a 4xx
 * `{error, code}` and never a 5xx, stays up, and its store stays consistent.
 */
import fc from "fast-check";
import { assert, assertEquals } from "./_assert.ts";
import { bearer, type Json, request, visitorToken } from "./_clients.ts";
import { TEST_SECRETS, withRelay } from "./_relay_process.ts";
import { assertIntact, KNOWN_CHAT, knownChat } from "./_store_checks.ts";

const BODY_LIMIT = 8 * 1024;

/** Every route a visitor or worker reaches over HTTP; `:chatId`/`:turnId` are fuzzed. */
const ROUTES: [string, string][] = [
  ["POST", "/api/session"],
  ["GET", "/api/chat/:chatId/messages"],
  ["POST", "/api/chat/:chatId/messages"],
  ["GET", "/api/chat/:chatId/worker-state"],
  ["POST", "/api/chat/:chatId/cancel"],
  ["GET", "/api/health"],
  ["GET", "/api/chat"],
  ["GET", "/api/chats/open"],
  ["POST", "/api/chat/:chatId/agent"],
  ["POST", "/api/chat/:chatId/agent-chunk"],
  ["POST", "/api/chat/:chatId/worker-state"],
  ["POST", "/api/worker/status"],
  ["POST", "/api/worker/turns/claim"],
  ["POST", "/api/worker/turns/:turnId/renew"],
  ["POST", "/api/worker/turns/:turnId/fail"],
  ["POST", "/api/chat/:chatId/messages/:turnId/retry"],
  ["GET", "/api/site"],
  ["PUT", "/api/worker/site"],
  ["POST", "/api/worker/turns/:turnId/release"],
  ["GET", "/api/worker/updates"],
  ["GET", "/api/admin/transcripts"],
];

/** Field names of the request schemas in lib/protocol.ts, to build wrongly typed bodies. */
const FIELDS = [
  "content",
  "accessCode",
  "replyTo",
  "leaseId",
  "stopped",
  "done",
  "kind",
  "offset",
  "turnId",
  "state",
  "detail",
  "workerId",
  "chatId",
  "agentApi",
  "llm",
  "status",
  "code",
  "error",
  "partial",
  "sources",
  "siteName",
  "suggestions",
  "__proto__",
  "constructor",
];

const loneSurrogates = fc.string({
  unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((n) => String.fromCharCode(n)),
  maxLength: 200,
});
const weirdString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  loneSurrogates,
  fc.constantFrom("", " ", "\u0000", "\u202e", "null", "../../etc/passwd", "%00", "💥".repeat(50)),
);

/**
 * Percent-encodes `text` as UTF-8, a lone surrogate as the 3 bytes UTF-8 would give it
 * (WTF-8): invalid UTF-8 once decoded, which `encodeURIComponent` refuses to produce.
 */
function percentEncode(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (cp >= 0xd800 && cp < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00);
      i++;
    }
    if (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(cp)) && cp < 0x80) {
      out += String.fromCharCode(cp);
      continue;
    }
    const bytes = cp < 0x80
      ? [cp]
      : cp < 0x800
      ? [0xc0 | (cp >> 6), 0x80 | (cp & 63)]
      : cp < 0x10000
      ? [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)]
      : [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
    out += bytes.map((b) => "%" + b.toString(16).toUpperCase().padStart(2, "0")).join("");
  }
  return out;
}

/** A path segment where a chat or turn id goes: valid-looking, hostile or huge. */
const segment = fc.oneof(
  {
    arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/).filter((s) => s !== KNOWN_CHAT),
    weight: 6,
  },
  { arbitrary: weirdString.map(percentEncode), weight: 2 },
  {
    arbitrary: fc.constantFrom(
      "%",
      "%ZZ",
      "..",
      "%2e%2e",
      "%2F",
      "a%00b",
      "x".repeat(65),
      "y".repeat(5000),
    ),
    weight: 1,
  },
);

/** Raw request bodies: JSON of any shape, wrong types, surrogates, garbage, too large. */
const body: fc.Arbitrary<string | Uint8Array<ArrayBuffer> | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.json({ maxDepth: 4 }),
  fc.dictionary(fc.constantFrom(...FIELDS), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 })
    .map((o) => JSON.stringify(o)),
  fc.record({ content: weirdString, accessCode: fc.option(weirdString) }).map((o) =>
    JSON.stringify(o)
  ),
  weirdString,
  fc.uint8Array({ maxLength: 2048 }).map((b) => new Uint8Array(b)),
  fc.integer({ min: 1, max: 4 }).map((n) =>
    JSON.stringify({ content: "z".repeat(BODY_LIMIT * n) })
  ),
  fc.integer({ min: 100, max: BODY_LIMIT / 2 - 1 }).map((n) => "[".repeat(n) + "]".repeat(n)),
);

/** Credentials: none, the right ones for either side, garbage, huge. */
function credentials(token: string): fc.Arbitrary<Record<string, string>> {
  return fc.oneof(
    { arbitrary: fc.constant({ authorization: `Bearer ${token}` }), weight: 5 },
    { arbitrary: fc.constant({ "x-service-token": TEST_SECRETS.SERVICE_TOKEN }), weight: 5 },
    fc.constant({}),
    fc.constant({ authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` }),
    fc.constant({ "x-access-code": TEST_SECRETS.CHAT_PASSWORD }),
    fc.string({ maxLength: 200 }).map((s) => ({ authorization: `Bearer ${s}` })),
    fc.string({ maxLength: 200 }).map((s) => ({ "x-service-token": s })),
    fc.integer({ min: 1, max: 30 }).map((k) => ({
      authorization: `Bearer ${"t".repeat(k * 1000)}`,
    })),
    fc.constant({ "x-service-token": "s".repeat(20_000), "x-worker-id": "\u00ff".repeat(100) }),
  );
}

const contentType = fc.constantFrom(
  undefined,
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/json; charset=utf-16",
  "garbage/;;;",
);

const query = fc.array(
  fc.tuple(
    fc.constantFrom("after", "limit", "since", "until", "chatId", "accessCode", "workerId"),
    fc.oneof(
      fc.constantFrom("-1", "1e400", "NaN", "0x10", "", "9007199254740993", "%ZZ"),
      weirdString.map(percentEncode),
    ),
  ),
  { maxLength: 3 },
).map((pairs) => pairs.length ? "?" + pairs.map(([k, v]) => `${k}=${v}`).join("&") : "");

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | Uint8Array<ArrayBuffer> | undefined;
}

function fuzzedRequest(token: string): fc.Arbitrary<Sent> {
  return fc.record({
    route: fc.constantFrom(...ROUTES),
    chatId: segment,
    turnId: segment,
    query,
    credentials: credentials(token),
    contentType,
    body,
    methodOverride: fc.oneof(
      { arbitrary: fc.constant(null), weight: 9 },
      fc.constantFrom("PUT", "DELETE", "PATCH", "OPTIONS"),
    ),
  }).map((r) => {
    const headers: Record<string, string> = { ...r.credentials };
    if (r.contentType) headers["content-type"] = r.contentType;
    const method = r.methodOverride ?? r.route[0];
    return {
      method,
      path: r.route[1].replace(":chatId", r.chatId).replace(":turnId", r.turnId) + r.query,
      headers,
      body: method === "GET" ? undefined : r.body,
    };
  });
}

/** Sends `sent` and returns status and body (parsed as JSON when it is JSON). */
async function send(base: string, sent: Sent): Promise<{ status: number; body: Json }> {
  const res = await fetch(base + sent.path, {
    method: sent.method,
    headers: sent.headers,
    body: sent.body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

Deno.test("fuzzed HTTP requests to every route get a 4xx {error, code}, never a 5xx, and leave the store intact", async () => {
  await withRelay({
    BODY_SIZE_LIMIT: `${BODY_LIMIT}b`,
    MAX_MESSAGE_LENGTH: "200",
    RATE_LIMIT_MAX_PER_IP: "100000",
    RATE_LIMIT_MAX_PER_CHAT: "100000",
    ACCESS_CODE_MAX_FAILURES: "100000",
    MAX_PENDING_TURNS_PER_CHAT: "100",
  }, async (relay) => {
    const token = await visitorToken(relay.url);
    // A known chat with a finished exchange: nothing fuzzed may change it.
    const known = await knownChat(relay, token);

    const asVisitor = bearer(token);
    const answered = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fuzzedRequest(token), async (sent) => {
        const { status, body } = await send(relay.url, sent);
        answered.set(status, (answered.get(status) ?? 0) + 1);
        assert(
          status < 500,
          `${sent.method} ${sent.path.slice(0, 200)} → ${status} ${JSON.stringify(body)}`,
        );
        if (status >= 400) {
          assert(
            typeof body === "object" && body !== null && Object.keys(body).sort().join() ===
                "code,error" &&
              typeof body.error === "string" && typeof body.code === "string",
            `${sent.method} ${sent.path.slice(0, 200)} → ${status} ${JSON.stringify(body)}`,
          );
        }
        const healthz = await fetch(`${relay.url}/healthz`);
        assertEquals([healthz.status, await healthz.text()], [200, "ok\n"]);
      }),
      {
        numRuns: 1000,
        interruptAfterTimeLimit: 15_000,
        // Regressions the fuzzer found: `limit=%20` read as 0, and a KV list with limit 0
        // threw, so the history route answered 500.
        examples: [
          [{
            method: "GET",
            path: "/api/chat/_/messages?limit=%20",
            headers: asVisitor,
            body: undefined,
          }],
          [{
            method: "GET",
            path: "/api/chat/_/messages?limit=0",
            headers: asVisitor,
            body: undefined,
          }],
        ],
      },
    );
    assert(
      (answered.get(400) ?? 0) > 0 && (answered.get(401) ?? 0) > 0,
      JSON.stringify([...answered]),
    );

    // A limit of 0 is an empty page; a limit that is not digits is a 400.
    const page = (query: string) =>
      request(`${relay.url}/api/chat/${KNOWN_CHAT}/messages?${query}`, { headers: asVisitor });
    assertEquals([(await page("limit=0")).status, (await page("limit=0")).body], [200, []]);
    for (const query of ["limit=%20", "after=1e3", "limit=0x10", "after=-1", "after=%2B1"]) {
      const res = await page(query);
      assertEquals([res.status, res.body.code], [400, "bad_query"], query);
    }

    // Headers too large for the HTTP server itself are refused before the relay sees them.
    const huge = await fetch(`${relay.url}/api/health`, {
      headers: { "x-big": "h".repeat(200_000) },
    });
    await huge.body?.cancel();
    assert(huge.status >= 400 && huge.status < 500, `huge headers: ${huge.status}`);

    // The store is consistent: the known chat is as it was, and a new chat works end to end.
    await assertIntact(relay, token, known);
  });
});
