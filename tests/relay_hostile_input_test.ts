/**
 * Secrets kept out of logs, and bad input that neither crashes the relay nor reaches the worker
 * (in-process relay).
 */
import { signRequest } from "../lib/hmac.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  bearer,
  postMessage,
  RecordingSocket,
  request,
  visitorSocket,
  visitorToken,
  workerCall,
  workerRequest,
  workerSocket,
} from "./_clients.ts";
import { withAppRelay } from "./_relay_in_process.ts";
import { TEST_SECRETS } from "./_relay_process.ts";
import { closeCodeOf, HMAC_SECRET, storedContents, SVC, wsBase } from "./_route_checks.ts";

// ---------------------------------------------------------------------------------------
// Logs, crashes, the worker boundary

Deno.test("secrets, tokens and submitted codes never appear in the relay's logs", async () => {
  await withAppRelay(
    { LOG_LEVEL: "debug", HMAC_ENABLED: "true", HMAC_SECRET, ACCESS_CODE_MAX_FAILURES: "3" },
    async (relay) => {
      const token = await visitorToken(relay.url);
      const wrongCodes = ["guess-Zq81xPw", "guess-Lm47cRt"];
      const wrongService = "svc-guess-9f8e7d6c5b4a39281706f5e4";
      const wrongAdmin = "adm-guess-1a2b3c4d5e6f7a8b9c0d1e2f";
      for (const code of wrongCodes) {
        await request(`${relay.url}/api/session`, { body: { accessCode: code } });
        await request(`${relay.url}/api/chat/c-log/messages?accessCode=${code}`);
      }
      await request(
        `${relay.url}/api/chat/c-log/messages?accessCode=${TEST_SECRETS.CHAT_PASSWORD}`,
      );
      await request(`${relay.url}/api/chat/c-log/messages`, {
        body: { content: "hello", accessCode: TEST_SECRETS.CHAT_PASSWORD },
      });
      await postMessage(relay.url, token, "c-log", "with a token");
      await request(`${relay.url}/api/chat/c-log/messages`, { headers: bearer(`${token}x`) });
      await workerRequest(relay.url, "/api/chats/open", undefined, { token: wrongService });
      await workerRequest(relay.url, "/api/chats/open", undefined, {
        hmacSecret: "wrong-secret-123456789",
      });
      await workerRequest(relay.url, "/api/chats/open", undefined, { hmacSecret: HMAC_SECRET });
      await request(`${relay.url}/api/admin/transcripts`, { headers: bearer(wrongAdmin) });
      const exported = await fetch(`${relay.url}/api/admin/transcripts`, {
        headers: bearer(TEST_SECRETS.ADMIN_TOKEN),
      });
      await exported.text();
      await request(`${relay.url}/metrics`, { headers: SVC });
      const socket = new RecordingSocket(
        `${wsBase(relay.url)}/api/chat?chatId=c-log&accessCode=${wrongCodes[0]}`,
      );
      await closeCodeOf(socket);
      const path = "/api/worker/updates?workerId=w-log";
      const worker = new RecordingSocket(wsBase(relay.url) + path, {
        ...SVC,
        ...(await signRequest(HMAC_SECRET, "GET", path)),
      });
      await worker.waitFor((es) => es.some((e) => e.type === "hello"), 10_000, "hello");
      await worker.close();
      const healthz = await request(`${relay.url}/healthz`);
      assertEquals(healthz.status, 200);

      const log = relay.lines.join("\n");
      assert(log.includes('"msg":"worker connected"'), "the relay did log (sanity)");
      const secrets: Record<string, string> = {
        "access code": TEST_SECRETS.CHAT_PASSWORD,
        "service token": TEST_SECRETS.SERVICE_TOKEN,
        "admin token": TEST_SECRETS.ADMIN_TOKEN,
        "HMAC secret": HMAC_SECRET,
        "session token": token,
        "session token signature": token.split(".")[1]!,
        "wrong service token": wrongService,
        "wrong admin token": wrongAdmin,
        ...Object.fromEntries(wrongCodes.map((c, i) => [`wrong code ${i}`, c])),
      };
      for (const [what, secret] of Object.entries(secrets)) {
        assert(!log.includes(secret), `the ${what} appears in the relay's log`);
      }
    },
  );
});

Deno.test("bad input never crashes the relay, never corrupts the store and never reaches the worker", async () => {
  await withAppRelay(
    { BODY_SIZE_LIMIT: "2kb", MAX_MESSAGE_LENGTH: "100", MAX_WS_FRAME_BYTES: "1kb" },
    async (relay) => {
      const token = await visitorToken(relay.url);
      const worker = await workerSocket(relay.url);
      const auth = bearer(token);
      const url = `${relay.url}/api/chat/target/messages`;
      assertEquals((await postMessage(relay.url, token, "target", "the real one")).status, 201);
      await worker.waitFor((es) => es.some((e) => e.type === "chat_activity"), 10_000, "activity");
      const claim = await workerCall(worker, {
        type: "claim",
        workerId: "w-bad",
        chatId: "target",
      });
      assert(claim.ok && claim.result.turn, JSON.stringify(claim));
      const before = worker.events.filter((e) => e.type === "chat_activity").length;

      const raw = (body: string, headers: Record<string, string> = auth) =>
        request(url, {
          method: "POST",
          rawBody: body,
          headers: { ...headers, "content-type": "application/json" },
        });
      const statuses: number[] = [];
      const attempts: Promise<{ status: number }>[] = [
        raw("{"),
        raw("null"),
        raw("[1,2,3]"),
        raw('{"content":{"$ne":null}}'),
        raw('{"__proto__":{"content":"polluted"}}'),
        raw('{"content":"' + "x".repeat(101) + '"}'),
        raw('{"content":"' + "x".repeat(5000) + '"}'),
        raw("\u0000\u0001\u0002"),
        raw('{"content":"no auth"}', {}),
        raw('{"content":"bad token"}', bearer("x.y")),
        request(`${relay.url}/api/chat/${"%00".repeat(3)}/messages`, {
          body: { content: "nul" },
          headers: auth,
        }),
        request(`${relay.url}/api/chat/..%2F..%2Fetc/messages`, {
          body: { content: "path" },
          headers: auth,
        }),
        request(`${relay.url}/api/chat/target/messages?after=1e400`, { headers: auth }),
        request(`${relay.url}/api/chat/target/messages?limit=-5`, { headers: auth }),
        request(`${relay.url}/api/chat/target/agent`, {
          body: { content: "forged" },
          headers: auth,
        }),
        request(`${relay.url}/api/admin/transcripts?since=%ZZ`, { headers: auth }),
        request(`${relay.url}/%E0%A4%A`),
        request(`${relay.url}/api/session`, {
          method: "POST",
          rawBody: "accessCode=x",
          headers: { "content-type": "application/x-www-form-urlencoded" },
        }),
      ];
      for (const attempt of attempts) statuses.push((await attempt).status);
      for (const [i, status] of statuses.entries()) {
        assert(status >= 400 && status < 500, `attempt ${i}: a 4xx, got ${status}`);
      }

      // Garbage over a visitor socket.
      const visitor = await visitorSocket(relay.url, "target", token);
      for (const frame of ["", "{", "[]", '{"type":"message","content":"sneaky"}', "\u0000"]) {
        visitor.socket.send(frame);
      }
      // Four get an error each; the fifth closes the socket (1008).
      assertEquals(await visitor.waitClosed(), 1008);
      assertEquals(visitor.events.filter((e) => e.type === "error").length, 4);

      // Still alive, the store intact, and the worker heard of nothing but real messages.
      const healthz = await request(`${relay.url}/healthz`);
      assertEquals([healthz.status, healthz.body], [200, "ok\n"]);
      assertEquals(await storedContents(relay.url, "target"), ["the real one"]);
      assertEquals((await workerRequest(relay.url, "/api/chats/open")).body, { chatIds: [] });
      assertEquals(
        (await postMessage(relay.url, token, "after-all", "a real question")).status,
        201,
      );
      await worker.waitFor(
        (es) => es.some((e) => e.type === "chat_activity" && e.chatId === "after-all"),
        10_000,
        "activity for the real question",
      );
      const activity = worker.events.filter((e) => e.type === "chat_activity").slice(before);
      assertEquals(activity.map((e) => e.chatId), ["after-all"]);
      assertEquals((await workerRequest(relay.url, "/api/chats/open")).body, {
        chatIds: ["after-all"],
      });
      await worker.close();
      assertEquals(
        relay.lines.filter((l) => l.includes('"level":"error"')),
        [],
        "no request ended in an internal error",
      );
    },
  );
});
