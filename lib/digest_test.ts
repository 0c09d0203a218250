import { assertEquals } from "../tests/_assert.ts";
import { constantTimeEqual, sha256, sha256Hex } from "./digest.ts";

Deno.test("sha256Hex() is the SHA-256 of the UTF-8 bytes, the same for a string and its bytes", () => {
  const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  assertEquals(sha256Hex(""), empty);
  assertEquals(sha256Hex(new Uint8Array()), empty);
  assertEquals(sha256Hex("moss"), sha256Hex(new TextEncoder().encode("moss")));
  assertEquals(sha256("moss").byteLength, 32);
});

Deno.test("constantTimeEqual() tells equal strings from different ones of any length", () => {
  assertEquals(constantTimeEqual("open-sesame", "open-sesame"), true);
  assertEquals(constantTimeEqual("open-sesame", "open-sesamE"), false);
  assertEquals(constantTimeEqual("open", "open-sesame"), false);
  assertEquals(constantTimeEqual("", ""), true);
});
