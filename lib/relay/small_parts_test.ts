/** Unit tests for the relay's small pure parts: tokens, limits, client IP, origin. */
import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { AccessGuard } from "./access_guard.ts";
import { clientIp, clientIpResolver, isLoopback } from "./client_ip.ts";
import { Logger } from "../log.ts";
import { parseRelayConfig } from "./config.ts";
import { originAllowed } from "./origin.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { SessionTokens } from "./session_token.ts";

Deno.test("SessionTokens verify their own tokens until they expire", async () => {
  const tokens = new SessionTokens("svc", "code", 60);
  const { token } = await tokens.issue(1_000_000);
  assert(await tokens.verify(token, 1_000_000));
  assertEquals(await tokens.verify(token, 1_000_000 + 61_000), false);
});

Deno.test("SessionTokens refuse tampered tokens and tokens from another access code", async () => {
  const tokens = new SessionTokens("svc", "code", 60);
  const { token } = await tokens.issue();
  const [body, mac] = token.split(".");
  assertEquals(await tokens.verify(`${body}x.${mac}`), false);
  assertEquals(await tokens.verify(`${body}.${mac}.x`), false);
  assertEquals(await tokens.verify("garbage"), false);
  assertEquals(await new SessionTokens("svc", "new-code", 60).verify(token), false);
});

Deno.test("AccessGuard locks an address out after repeated wrong codes, even for the right one", async () => {
  const clock = { now: 0 };
  const guard = new AccessGuard("right", {
    maxFailures: 3,
    lockoutSeconds: 60,
    globalFailures: 100,
    now: () => clock.now,
  });
  for (let i = 0; i < 3; i++) {
    await assertRejects(() => guard.check("1.2.3.4", "wrong"), "not right");
  }
  clock.now = 1_000;
  await assertRejects(() => guard.check("1.2.3.4", "right"), "Too many wrong access codes");
  await guard.check("5.6.7.8", "right");
  clock.now = 61_000;
  await guard.check("1.2.3.4", "right");
});

Deno.test("RateLimiter allows max hits per window and says how long to wait", () => {
  const limiter = new RateLimiter(10_000, 2);
  assertEquals(limiter.hit("a", 0), 0);
  assertEquals(limiter.hit("a", 1), 0);
  assertEquals(limiter.hit("a", 2_000), 8);
  assertEquals(limiter.hit("b", 2_000), 0);
  assertEquals(limiter.hit("a", 10_000), 0);
});

Deno.test("clientIp() ignores forwarding headers unless the proxy is trusted", () => {
  const headers = new Headers({ "x-forwarded-for": "6.6.6.6, 1.1.1.1" });
  assertEquals(clientIp(headers, "10.0.0.1", false), "10.0.0.1");
  assertEquals(clientIp(headers, "10.0.0.1", true), "1.1.1.1");
  headers.set("x-real-ip", "2.2.2.2");
  assertEquals(clientIp(headers, "10.0.0.1", true), "2.2.2.2");
});

Deno.test("clientIp() ignores forwarding headers that are not IP addresses", () => {
  assertEquals(clientIp(new Headers({ "x-real-ip": "junk-1" }), "127.0.0.1", true), "127.0.0.1");
  assertEquals(clientIp(new Headers({ "x-real-ip": "999.1.1.1" }), "127.0.0.1", true), "127.0.0.1");
  assertEquals(
    clientIp(new Headers({ "x-real-ip": "2001:db8::1" }), "127.0.0.1", true),
    "2001:db8::1",
  );
  assertEquals(
    clientIp(new Headers({ "x-forwarded-for": "1.1.1.1, x" }), "10.0.0.1", true),
    "10.0.0.1",
  );
});

Deno.test("clientIpResolver(): TRUST_PROXY unset believes loopback peers only; false warns once", () => {
  const trust = (value?: string) => {
    const c = parseRelayConfig({ DEMO_MODE: "true", TRUST_PROXY: value });
    return [c.trustProxy, c.trustLoopbackProxy];
  };
  assertEquals([trust(), trust("false"), trust("true")], [[false, true], [false, false], [
    true,
    false,
  ]]);
  assert(isLoopback("127.0.0.1") && isLoopback("::1") && isLoopback("::ffff:127.0.0.2"));
  assertEquals(isLoopback("10.0.0.1"), false);
  const lines: string[] = [];
  const log = new Logger("test", "info", (line) => lines.push(line));
  const headers = new Headers({ "x-real-ip": "192.0.2.5" });
  const unset = clientIpResolver({ trustProxy: false, trustLoopbackProxy: true }, log);
  assertEquals(unset(headers, "127.0.0.1"), "192.0.2.5");
  assertEquals(unset(headers, "198.51.100.1"), "198.51.100.1", "a remote peer is not believed");
  const off = clientIpResolver({ trustProxy: false, trustLoopbackProxy: false }, log);
  assertEquals(off(headers, "127.0.0.1"), "127.0.0.1");
  off(headers, "127.0.0.1");
  assertEquals(lines.length, 1);
  assert(lines[0]!.includes("TRUST_PROXY"), lines[0]);
  const any = clientIpResolver({ trustProxy: true, trustLoopbackProxy: false }, log);
  assertEquals(any(headers, "198.51.100.1"), "192.0.2.5");
});

Deno.test("originAllowed() defaults to the relay's own host and honours the allow-list", () => {
  const own = new Headers({ host: "chat.example.com", origin: "https://chat.example.com" });
  const other = new Headers({ host: "chat.example.com", origin: "https://evil.example" });
  assert(originAllowed(own, [], false));
  assertEquals(originAllowed(other, [], false), false);
  assert(originAllowed(other, ["https://evil.example"], false));
  assert(originAllowed(new Headers({ host: "x" }), [], false), "no Origin: not a browser");
});
