/**
 * Hostile HTTP clients against a real relay process (issue 11): guessing spread over an
 * IPv6 /64, a guessing burst against the global failure budget, one client filling the
 * queue, forwarding headers the relay ignores, and invalid bytes in page paths. Every loop
 * is bounded; delays are read from the relay's own state (`/metrics`), never timed.
 */
import { assert, assertEquals } from "./_assert.ts";
import { assertError, bearer, request, type Res, visitorToken, workerRequest } from "./_clients.ts";
import { type RelayProcess, TEST_SECRETS, withRelay } from "./_relay_process.ts";

const RIGHT = TEST_SECRETS.CHAT_PASSWORD;

/** `POST /api/session` as the client `ip` (nginx's X-Real-IP). */
function session(relay: RelayProcess, ip: string, accessCode: string): Promise<Res> {
  return request(`${relay.url}/api/session`, {
    body: { accessCode },
    headers: { "x-real-ip": ip },
  });
}

function retryAfter(res: Res): number {
  const value = res.headers.get("retry-after");
  assert(value !== null && /^\d+$/.test(value), `Retry-After: ${value}`);
  return Number(value);
}

/** The value of one un-labelled metric from `/metrics`. */
async function metric(relay: RelayProcess, name: string): Promise<number> {
  const res = await request(`${relay.url}/metrics`, {
    headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
  });
  const line = String(res.body).split("\n").find((l) => l.startsWith(`${name} `));
  assert(line, `${name} in /metrics`);
  return Number(line.split(" ")[1]);
}

const logLines = (relay: RelayProcess, text: string) =>
  relay.lines.filter((line) => line.includes(text));

Deno.test("lockout keys: 400 wrong codes over one IPv6 /64 are refused, other keys keep the right code", async () => {
  // TRUST_PROXY unset: X-Real-IP from the loopback peer (the local nginx) is believed.
  await withRelay(
    { RATE_LIMIT_MAX_PER_IP: "10000", ACCESS_CODE_GLOBAL_FAILURES: "100000" },
    async (relay) => {
      const statuses = new Map<string, number>();
      for (let i = 0; i < 400; i++) {
        const res = await session(
          relay,
          `2001:db8:1:2:${(i * 7919 % 0x10000).toString(16)}::${i + 1}`,
          `g${i}`,
        );
        const what = `${res.status} ${res.body.code}`;
        statuses.set(what, (statuses.get(what) ?? 0) + 1);
      }
      assertEquals(Object.fromEntries(statuses), {
        "401 bad_access_code": 5,
        "429 locked_out": 395,
      });
      // The right code from inside the /64 is refused; from the next /64 it is accepted.
      const inside = await session(relay, "2001:db8:1:2:ffff:ffff:ffff:ffff", RIGHT);
      assertError(inside, 429, "locked_out");
      assert(inside.body.error.endsWith("."), inside.body.error);
      assert(retryAfter(inside) <= 900);
      assertEquals((await session(relay, "2001:db8:1:3::1", RIGHT)).status, 200);

      // IPv4: the address is the key, and its IPv4-mapped IPv6 form is the same key.
      for (let i = 0; i < 5; i++) await session(relay, "192.0.2.7", `v4-${i}`);
      assertError(await session(relay, "192.0.2.7", RIGHT), 429, "locked_out");
      assertError(await session(relay, "::ffff:192.0.2.7", RIGHT), 429, "locked_out");
      assertEquals((await session(relay, "192.0.2.8", RIGHT)).status, 200);
      // The legacy access code in a body is judged by the same key.
      const legacy = await request(`${relay.url}/api/chat/c-legacy/messages`, {
        body: { content: "hi", accessCode: RIGHT },
        headers: { "x-real-ip": "2001:db8:1:2::abcd" },
      });
      assertError(legacy, 429, "locked_out");
      assertEquals(logLines(relay, "TRUST_PROXY"), [], "no proxy warning: headers are believed");
    },
  );
});

Deno.test("a guessing burst spends the global budget: every check is slowed, a warning is logged once, the right code still works", async () => {
  await withRelay(
    { ACCESS_CODE_GLOBAL_FAILURES: "5", RATE_LIMIT_MAX_PER_IP: "10000" },
    async (relay) => {
      assertEquals(await metric(relay, "terrarium_access_code_delay_seconds"), 0);
      // Four guessers, two wrong codes each: never a lockout, but 8 failures in total.
      const delays: number[] = [];
      for (let i = 0; i < 8; i++) {
        assertError(
          await session(relay, `198.51.100.${i % 4}`, `burst-${i}`),
          401,
          "bad_access_code",
        );
        delays.push(await metric(relay, "terrarium_access_code_delay_seconds"));
      }
      assertEquals(delays.slice(0, 5), [0, 0, 0, 0, 0], "within the budget");
      assert(delays[5]! > 0, `slowed past the budget: ${delays}`);
      assert(delays[7]! > delays[6]! && delays[6]! > delays[5]!, `the delay grows: ${delays}`);
      assertEquals(logLines(relay, "every access-code check is slowed").length, 1);

      // Two checks at once from one key: one waits and, with the right code from a key
      // that never guessed, is accepted; the other is refused with Retry-After.
      const both = await Promise.all([
        session(relay, "203.0.113.50", RIGHT),
        session(relay, "203.0.113.50", RIGHT),
      ]);
      both.sort((x, y) => x.status - y.status);
      assertEquals(both[0]!.status, 200);
      assertError(both[1]!, 429, "rate_limited");
      assert(retryAfter(both[1]!) >= 1);
      assertEquals(logLines(relay, "every access-code check is slowed").length, 1);
      assertEquals(logLines(relay, '"level":"error"'), []);
    },
  );
});

Deno.test("open-turn caps: 429 too_many_open_turns per client key and queue_full overall, with Retry-After", async () => {
  await withRelay(
    {
      MAX_OPEN_TURNS_PER_CLIENT: "2",
      MAX_OPEN_TURNS: "3",
      RATE_LIMIT_MAX_PER_IP: "1000",
      RATE_LIMIT_MAX_PER_CHAT: "1000",
    },
    async (relay) => {
      const token = await visitorToken(relay.url);
      const post = (ip: string, chatId: string) =>
        request(`${relay.url}/api/chat/${chatId}/messages`, {
          body: { content: "hello?" },
          headers: { ...bearer(token), "x-real-ip": ip },
        });
      assertEquals((await post("2001:db8:9:9::1", "flood-1")).status, 201);
      assertEquals((await post("2001:db8:9:9::2", "flood-2")).status, 201, "same /64, new chat");
      // Many chats at once from the same /64: none slips past the cap by racing.
      const burst = await Promise.all(
        Array.from({ length: 20 }, (_, i) => post(`2001:db8:9:9::${100 + i}`, `flood-r${i}`)),
      );
      for (const res of burst) {
        assertError(res, 429, "too_many_open_turns");
        assertEquals(retryAfter(res), 15);
        assert(res.body.error.endsWith("."), res.body.error);
      }
      assertEquals((await post("192.0.2.20", "other-1")).status, 201, "another key");
      const full = await post("192.0.2.21", "other-2");
      assertError(full, 429, "queue_full");
      assertEquals(retryAfter(full), 30);
      assert(full.body.error.endsWith("."), full.body.error);
      const open = await workerRequest(relay.url, "/api/chats/open");
      assertEquals([...open.body.chatIds].sort(), ["flood-1", "flood-2", "other-1"]);

      // Once Terra answers one of the flooder's chats, it may ask again.
      const claim = await workerRequest(relay.url, "/api/worker/turns/claim", {
        workerId: "w1",
        chatId: "flood-1",
      });
      const turn = claim.body.turn;
      assertEquals(
        (await workerRequest(relay.url, "/api/chat/flood-1/agent", {
          content: "Hi!",
          replyTo: turn.id,
        })).status,
        201,
      );
      assertEquals((await post("2001:db8:9:9::1", "flood-3")).status, 201);
      // The queue position a newcomer reads stays small: the flood never got in.
      const state = await request(`${relay.url}/api/chat/other-1/worker-state`, {
        headers: bearer(token),
      });
      assert((state.body.queuePosition ?? 0) <= 2, JSON.stringify(state.body));
    },
  );
});

Deno.test("TRUST_PROXY=false with forwarding headers from a loopback peer warns once, naming TRUST_PROXY", async () => {
  await withRelay({ TRUST_PROXY: "false" }, async (relay) => {
    for (let i = 0; i < 3; i++) {
      await request(`${relay.url}/api/health`, { headers: { "x-real-ip": `192.0.2.${i}` } });
      await request(`${relay.url}/api/health`, { headers: { "x-forwarded-for": "192.0.2.9" } });
    }
    const warnings = logLines(relay, "TRUST_PROXY");
    assertEquals(warnings.length, 1, warnings.join("\n"));
    assert(warnings[0]!.includes('"level":"warn"'), warnings[0]);
  });
});

Deno.test("a NUL or other control byte in a page path is 400 bad_path, with no error logged", async () => {
  await withRelay({}, async (relay) => {
    for (const path of ["/%00", "/index.html%00.js", "/a%0d%0ab", "/a%5c..%5cb", "/%7f"]) {
      assertError(await request(`${relay.url}${path}`), 400, "bad_path", path);
    }
    assertError(await request(`${relay.url}/%ff`), 400, "bad_path", "not UTF-8");
    assertEquals((await request(`${relay.url}/`)).status, 200, "the page itself");
    // Garbage where nginx puts the client address is not a client key of its own.
    for (let i = 0; i < 6; i++) {
      await session(relay, `not-an-address-${i}`, `guess-${i}`);
    }
    assertError(await session(relay, "still-not-one", RIGHT), 429, "locked_out");
    assertEquals(logLines(relay, '"level":"error"'), []);
  });
});
