import { assertEquals } from "../../tests/_assert.ts";
import { parseWorkerConfig } from "./config.ts";
import { workerGrants, workerPermissionFlags } from "./permissions.ts";

const BASE = {
  API_BASE_URL: "https://example.com/terrarium",
  SERVICE_TOKEN: "svc-0123456789abcdef0123456789abcdef",
  AGENT_API_URL: "http://127.0.0.1:8080/v1/chat/completions",
  CONTENT_DIR: "/srv/terra/content",
  ENHANCEMENT_DIR: "/srv/terra/enhancements",
};

Deno.test("workerGrants() names the relay, agent, search and live hosts, nothing else", () => {
  const config = parseWorkerConfig({
    ...BASE,
    AGENT_HEALTH_URL: "http://127.0.0.1:8081/health",
    SEARCH_API_URL: "http://127.0.0.1:8888/search",
    LIVE_ALLOWED_HOSTS: "example.com,docs.example.org",
    LIVE_ALLOWED_URLS: "https://social.example/@terra",
    CHAT_LOG_DIR: "/srv/terra/logs",
  });
  const grants = workerGrants(config, "/etc/terra/worker.env");
  assertEquals(grants.net, [
    "127.0.0.1:8080",
    "127.0.0.1:8081",
    "127.0.0.1:8888",
    "docs.example.org:443",
    "example.com:443",
    "social.example:443",
  ]);
  assertEquals(grants.read, [
    "/srv/terra/content",
    "/srv/terra/enhancements",
    "/etc/terra/worker.env",
  ]);
  assertEquals(grants.write, ["/srv/terra/enhancements", "/srv/terra/logs"]);
  // Loopback is needed for the agent; every other private range is denied.
  assertEquals(grants.denyNet.includes("127.0.0.0/8"), false);
  assertEquals(grants.denyNet.includes("192.168.0.0/16"), true);
  assertEquals(grants.denyNet.includes("10.0.0.0/8"), true);
});

Deno.test("an agent on a LAN address keeps its range open", () => {
  const config = parseWorkerConfig({ ...BASE, AGENT_API_URL: "http://192.168.1.20:8000/v1" });
  const grants = workerGrants(config);
  assertEquals(grants.denyNet.includes("192.168.0.0/16"), false);
  assertEquals(grants.denyNet.includes("127.0.0.0/8"), true);
});

Deno.test("an agent on a LAN name denies no private range", () => {
  const config = parseWorkerConfig({ ...BASE, AGENT_API_URL: "http://gpu-box:8000/v1" });
  assertEquals(workerGrants(config).denyNet, []);
});

Deno.test("workerPermissionFlags() grants no run, ffi, sys or blanket access", () => {
  const flags = workerPermissionFlags(parseWorkerConfig(BASE));
  assertEquals(flags.some((f) => /^--allow-(run|ffi|sys|all)|^-A$/.test(f)), false);
  assertEquals(flags.some((f) => f === "--allow-net" || f === "--allow-read"), false);
  assertEquals(flags.includes("--allow-net=127.0.0.1:8080,example.com:443"), true);
});
