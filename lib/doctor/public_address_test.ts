import { assertEquals } from "../../tests/_assert.ts";
import { nonPublicKind } from "./public_address.ts";

Deno.test("nonPublicKind() names private, loopback and mapped addresses and passes public ones", () => {
  assertEquals(nonPublicKind("127.0.0.1"), "loopback");
  assertEquals(nonPublicKind("::ffff:127.0.0.1"), "loopback");
  assertEquals(nonPublicKind("192.168.1.20"), "private");
  assertEquals(nonPublicKind("172.31.0.1"), "private");
  assertEquals(nonPublicKind("100.100.0.1"), "shared (CGNAT)");
  assertEquals(nonPublicKind("fd00::1"), "private (ULA)");
  assertEquals(nonPublicKind("fe80::1"), "link-local");
  assertEquals(nonPublicKind("::1"), "loopback");
  assertEquals(nonPublicKind("93.184.216.34"), null);
  assertEquals(nonPublicKind("172.32.0.1"), null);
  assertEquals(nonPublicKind("2606:2800:220:1::1"), null);
});
