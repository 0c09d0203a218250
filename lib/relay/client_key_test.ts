import { assertEquals } from "../../tests/_assert.ts";
import { clientKey } from "./client_key.ts";

Deno.test("clientKey() keeps an IPv4 address as it is", () => {
  assertEquals(clientKey("192.0.2.7"), "192.0.2.7");
});

Deno.test("clientKey() groups every IPv6 address of one /64 under one key", () => {
  const key = "2001:db8:1:2::/64";
  assertEquals(clientKey("2001:db8:1:2::1"), key);
  assertEquals(clientKey("2001:0DB8:0001:0002:ffff:1234:5678:9abc"), key);
  assertEquals(clientKey("[2001:db8:1:2:a:b:c:d]"), key);
  assertEquals(clientKey("fe80::1%eth0"), "fe80:0:0:0::/64");
  assertEquals(clientKey("2001:db8:1:3::1"), "2001:db8:1:3::/64");
});

Deno.test("clientKey() maps an IPv4-mapped IPv6 address to its IPv4 address", () => {
  assertEquals(clientKey("::ffff:127.0.0.1"), "127.0.0.1");
  assertEquals(clientKey("::ffff:7f00:1"), "127.0.0.1");
});

Deno.test("clientKey() keeps what it cannot parse as it is", () => {
  assertEquals(clientKey("unknown"), "unknown");
  assertEquals(clientKey("1:2:3"), "1:2:3");
  assertEquals(clientKey("1::2::3"), "1::2::3");
});
