import { assertEquals, assertThrows } from "../../../tests/_assert.ts";
import { parseRedisUrl } from "./redis_url.ts";

Deno.test("parseRedisUrl() takes host, port, database and TLS from the URL", () => {
  const endpoint = parseRedisUrl("rediss://cache.example:6380/2");
  assertEquals(endpoint.netHost, "cache.example:6380");
  assertEquals(endpoint.tls, true);
  assertEquals(endpoint.database, 2);
  assertEquals(endpoint.password, undefined);
});

Deno.test("parseRedisUrl() defaults the port and strips the password from the URL", () => {
  const endpoint = parseRedisUrl("redis://default:s%40cret@10.0.0.5");
  assertEquals(endpoint.netHost, "10.0.0.5:6379");
  assertEquals(endpoint.password, "s@cret");
  assertEquals(endpoint.username, "default");
  assertEquals(endpoint.url.includes("cret"), false);
});

Deno.test("parseRedisUrl() takes the password from REDIS_PASSWORD", () => {
  assertEquals(parseRedisUrl("redis://127.0.0.1:7000", "pw").password, "pw");
  assertEquals(parseRedisUrl("redis://127.0.0.1:7000", "").password, undefined);
});

Deno.test("parseRedisUrl() refuses other schemes, bad databases and two passwords", () => {
  assertThrows(() => parseRedisUrl("http://127.0.0.1:6379"), "scheme");
  assertThrows(() => parseRedisUrl("redis://127.0.0.1:6379/abc"), "database");
  assertThrows(() => parseRedisUrl("not a url"), "REDIS_URL");
  assertThrows(() => parseRedisUrl("redis://:a@127.0.0.1", "b"), "REDIS_PASSWORD");
});
