import { assertEquals, assertThrows } from "../tests/_assert.ts";
import { ConfigError, envFileArg } from "./env.ts";
import { parseRelayConfig } from "./relay/config.ts";

const SECRETS = {
  CHAT_PASSWORD: "open-sesame-42",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
};

Deno.test("parseRelayConfig() applies SPEC §9 defaults", () => {
  const config = parseRelayConfig({ ...SECRETS, KV_PATH: "/tmp/x/relay.kv" });
  assertEquals(config.port, 4100);
  assertEquals(config.hostname, "127.0.0.1");
  assertEquals(config.maxMessageLength, 4000);
  assertEquals(config.bodySizeLimitBytes, 256 * 1024);
  assertEquals(config.legacyAccessCode, true);
  assertEquals(config.trustProxy, false);
  assertEquals(config.adminToken, "");
});

Deno.test("parseRelayConfig() names every bad variable at once", () => {
  const error = assertThrows(() =>
    parseRelayConfig({
      CHAT_PASSWORD: "changeme",
      PORT: "eighty",
      BODY_SIZE_LIMIT: "lots",
      TRUST_PROXY: "maybe",
      BASE_PATH: "terrarium/",
    })
  ) as ConfigError;
  const names = error.problems.map((p) => p.split(":")[0]).sort();
  assertEquals(names, [
    "BASE_PATH",
    "BODY_SIZE_LIMIT",
    "CHAT_PASSWORD",
    "PORT",
    "SERVICE_TOKEN",
    "TRUST_PROXY",
  ]);
});

Deno.test("parseRelayConfig() refuses HMAC without a secret and a short admin token", () => {
  const error = assertThrows(() =>
    parseRelayConfig({ ...SECRETS, HMAC_ENABLED: "true", ADMIN_TOKEN: "short" })
  ) as ConfigError;
  assertEquals(error.problems.map((p) => p.split(":")[0]).sort(), ["ADMIN_TOKEN", "HMAC_SECRET"]);
});

Deno.test("demo mode accepts missing secrets and fills demo values", () => {
  const config = parseRelayConfig({ DEMO_MODE: "true" });
  assertEquals(config.demoMode, true);
  assertEquals(config.chatPassword.length > 0, true);
});

Deno.test("sizes and lists parse as an operator would write them", () => {
  const config = parseRelayConfig({
    ...SECRETS,
    BODY_SIZE_LIMIT: "1mb",
    MAX_WS_FRAME_BYTES: "4096",
    ALLOWED_ORIGINS: " https://a.example , ,https://b.example",
    KV_PATH: "relative/relay.kv",
  });
  assertEquals(config.bodySizeLimitBytes, 1024 * 1024);
  assertEquals(config.maxWsFrameBytes, 4096);
  assertEquals(config.allowedOrigins, ["https://a.example", "https://b.example"]);
  assertEquals(config.kvPath.startsWith("/"), true);
});

Deno.test("envFileArg() reads both --env-file forms", () => {
  assertEquals(envFileArg(["--env-file=/a.env"]), "/a.env");
  assertEquals(envFileArg(["x", "--env-file", "/b.env"]), "/b.env");
  assertEquals(envFileArg(["x"]), undefined);
});
