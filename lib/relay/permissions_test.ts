import { assertEquals } from "../../tests/_assert.ts";
import { parseRelayConfig } from "./config.ts";
import { relayPermissionFlags } from "./permissions.ts";

const SECRETS = {
  CHAT_PASSWORD: "open-sesame-42",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
};

Deno.test("relayPermissionFlags() grants listen, its KV dir, its page and its env only", () => {
  const config = parseRelayConfig({
    ...SECRETS,
    PORT: "4101",
    KV_PATH: "/var/lib/terrarium/relay.kv",
    WEB_DIR: "/opt/terrarium/web",
  });
  const flags = relayPermissionFlags(config, "/etc/terrarium/relay.env");
  assertEquals(flags.includes("--allow-net=127.0.0.1:4101"), true);
  assertEquals(
    flags.includes("--allow-read=/var/lib/terrarium,/opt/terrarium/web,/etc/terrarium/relay.env"),
    true,
  );
  assertEquals(flags.includes("--allow-write=/var/lib/terrarium"), true);
  assertEquals(flags.some((f) => f.startsWith("--allow-env=PORT,")), true);
  assertEquals(flags.some((f) => /^--allow-(run|ffi|sys|all)|^-A$/.test(f)), false);
});

Deno.test("relayPermissionFlags() lets a remote KV through and writes nothing locally", () => {
  const config = parseRelayConfig({
    ...SECRETS,
    KV_PATH: "https://kv.example.com/db",
    WEB_DIR: "",
  });
  const flags = relayPermissionFlags(config);
  assertEquals(flags.includes("--allow-net=127.0.0.1:4100,kv.example.com"), true);
  assertEquals(flags.some((f) => f.startsWith("--allow-write")), false);
  assertEquals(flags.some((f) => f.startsWith("--allow-read")), false);
});

Deno.test("relayPermissionFlags() with several ports lets one build listen on each (two relays on one host)", () => {
  const config = parseRelayConfig({
    ...SECRETS,
    PORT: "4100",
    REDIS_URL: "redis://127.0.0.1:6379",
    WEB_DIR: "",
  });
  const flags = relayPermissionFlags(config, undefined, { ports: [4100, 4101, 4101] });
  assertEquals(flags.includes("--allow-net=127.0.0.1:4100,127.0.0.1:4101,127.0.0.1:6379"), true);
  assertEquals(
    relayPermissionFlags(config, undefined, { ports: [] }),
    relayPermissionFlags(config),
  );
});
