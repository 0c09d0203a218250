import { assertEquals, assertThrows } from "../../../tests/_assert.ts";
import { parseRelayConfig } from "../config.ts";
import { relayPermissionFlags } from "../permissions.ts";

const SECRETS = {
  CHAT_PASSWORD: "open-sesame-42",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
};

Deno.test("REDIS_URL selects Redis: the relay may reach exactly that host, and writes no KV dir", () => {
  const config = parseRelayConfig({
    ...SECRETS,
    PORT: "4101",
    REDIS_URL: "rediss://cache.internal:6380/1",
    REDIS_PASSWORD: "pw",
    KV_PATH: "/var/lib/terrarium/relay.kv",
    WEB_DIR: "",
  });
  assertEquals([config.redisUrl, config.redisPassword], ["rediss://cache.internal:6380/1", "pw"]);
  const flags = relayPermissionFlags(config);
  assertEquals(flags.includes("--allow-net=127.0.0.1:4101,cache.internal:6380"), true);
  assertEquals(flags.some((f) => f.startsWith("--allow-write")), false);
  assertEquals(flags.some((f) => f.startsWith("--allow-read")), false);
  assertEquals(flags.some((f) => f.startsWith("--allow-env=") && f.includes("REDIS_URL")), true);
});

Deno.test("Without REDIS_URL the relay keeps Deno KV", () => {
  const config = parseRelayConfig({ ...SECRETS, KV_PATH: "/var/lib/terrarium/relay.kv" });
  assertEquals(config.redisUrl, "");
  assertEquals(relayPermissionFlags(config).includes("--allow-write=/var/lib/terrarium"), true);
});

Deno.test("A bad REDIS_URL or a password in two places is a config error naming the variable", () => {
  assertThrows(() => parseRelayConfig({ ...SECRETS, REDIS_URL: "http://x:1" }), "REDIS_URL");
  assertThrows(
    () => parseRelayConfig({ ...SECRETS, REDIS_URL: "redis://:a@x:1", REDIS_PASSWORD: "b" }),
    "REDIS_PASSWORD",
  );
});
