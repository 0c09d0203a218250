/**
 * The shipped nginx files, as an operator uses them (issue 15, issue 11): the http-level
 * file in http { } and the locations file inside an existing TLS server { }, and the
 * complete example site. For each, Debian's nginx (started by the test, on 127.0.0.1 with
 * a certificate the test makes) passes `nginx -t`, and the page, the API and both
 * WebSockets work under BASE_PATH over TLS to a real relay; the legacy `?accessCode=`
 * never reaches the access log. And two relays on one Redis in the one upstream (issue 14): the
 * requests spread over both, a visitor's chat works whichever relay each request reaches.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./_assert.ts";
import { chatHistory, postMessage, request, visitorToken } from "./_clients.ts";
import { spawnDeno } from "./_process.ts";
import { driveChat } from "./_proxied_chat.ts";
import { metricTotal, type RelayPair, withRelayPair } from "./_relay_pair.ts";
import { freePort, type RelayProcess, TEST_SECRETS, withRelay } from "./_relay_process.ts";

const SYSTEMD = fileURLToPath(new URL("../systemd", import.meta.url));
const CLIENT = fileURLToPath(new URL("./_proxied_chat.ts", import.meta.url));
const WEB_DIST = fileURLToPath(new URL("../web/dist", import.meta.url));

async function run(cmd: string, args: string[], cwd?: string) {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, output: text };
}

/** A test CA and a certificate for 127.0.0.1 and localhost signed by it (openssl). */
async function makeCertificate(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const steps: string[][] = [
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=terrarium test CA",
    ],
    ["req", ...ec, "-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=localhost"],
    [
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "cert.pem",
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
    ],
  ];
  await Deno.writeTextFile(
    join(dir, "ext.cnf"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
  );
  for (const args of steps) {
    const result = await run("openssl", args, dir);
    assertEquals(result.code, 0, `openssl ${args[0]}: ${result.output}`);
  }
  return { ca: join(dir, "ca.pem"), cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
}

/** Reads a shipped file with this machine's relay port and paths. */
async function shipped(name: string, relay: RelayProcess, dir: string): Promise<string> {
  const text = (await Deno.readTextFile(join(SYSTEMD, name)))
    .replace("server 127.0.0.1:4100;", `server 127.0.0.1:${relay.port};`)
    .replaceAll("/var/log/nginx/access.log", join(dir, "access.log"));
  assert(!text.includes("server 127.0.0.1:4100;"), `${name}: the relay's address in one place`);
  return text;
}

/** nginx.conf around `server` (the http-level file included first, as conf.d is). */
function mainConfig(dir: string, server: string): string {
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((t) => `  ${t}_temp_path ${dir}/${t};\n`).join("");
  return `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n` +
    `  access_log ${dir}/access-other.log;\n${temp}` +
    `  include ${dir}/terrarium-http.conf;\n${server}\n}\n`;
}

/**
 * `nginx -t` on `dir`/nginx.conf, then nginx in the foreground, waited for (bounded) until it
 * takes connections on `port`; the caller stops it with `stop()`.
 */
async function startNginx(dir: string, port: number): Promise<{ stop(): Promise<void> }> {
  const conf = join(dir, "nginx.conf");
  const test = await run("nginx", ["-t", "-p", dir, "-c", conf]);
  assertEquals(test.code, 0, `nginx -t:\n${test.output}\n${await Deno.readTextFile(conf)}`);
  const nginx = new Deno.Command("nginx", {
    args: ["-p", dir, "-c", conf, "-g", "daemon off; master_process off;"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    const up = await Deno.connect({ hostname: "127.0.0.1", port }).then((c) => {
      c.close();
      return true;
    }, () => false);
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async stop() {
      nginx.kill("SIGTERM");
      await nginx.status;
    },
  };
}

/** nginx on `dir`; the proxied chat from a process that trusts the CA. */
async function checkNginx(dir: string, port: number, ca: string): Promise<void> {
  const nginx = await startNginx(dir, port);
  try {
    const base = `https://127.0.0.1:${port}/terrarium`;
    const client = spawnDeno(
      ["run", "--allow-net=127.0.0.1", "--allow-read", "--allow-env", CLIENT, base],
      { DENO_CERT: ca },
    );
    const timer = setTimeout(() => client.kill(), 30_000);
    const status = await client.status;
    clearTimeout(timer);
    assertEquals(status.code, 0, client.lines.join("\n"));
    // The legacy socket's access code is not in the access log; its request is.
    const log = await Deno.readTextFile(join(dir, "access.log"));
    assert(log.includes("/terrarium/api/chat?[query with access code removed]"), log);
    assert(!log.includes(TEST_SECRETS.CHAT_PASSWORD), `the access code is logged:\n${log}`);
    assert(/"GET \/terrarium\/ HTTP\/(1\.1|2\.0)" 200/.test(log), log);

    // limit_req holds on the API: a burst past 20 gets nginx's own 429 (not the relay's JSON).
    const http = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(ca)] });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) {
        const res = await fetch(`${base}/api/health`, { client: http });
        const type = res.headers.get("content-type") ?? "";
        await res.body?.cancel();
        if (res.status === 429) assert(!type.includes("json"), "the 429 is nginx's");
        statuses.push(res.status);
      }
      assert(statuses.includes(429), `limited: ${statuses.join(" ")}`);
    } finally {
      http.close();
    }
  } finally {
    await nginx.stop();
  }
}

Deno.test("the locations file inside an existing TLS server proxies the page, the API and both sockets", async () => {
  await withRelay({ BASE_PATH: "/terrarium", TRUST_PROXY: "true" }, async (relay) => {
    const dir = await Deno.makeTempDir({ prefix: "terrarium-nginx-" });
    try {
      const { ca, cert, key } = await makeCertificate(dir);
      const port = freePort();
      await Deno.writeTextFile(
        join(dir, "terrarium-http.conf"),
        await shipped("nginx-terrarium-http.conf", relay, dir),
      );
      await Deno.writeTextFile(
        join(dir, "terrarium-locations.conf"),
        await shipped("nginx-terrarium-locations.conf", relay, dir),
      );
      // The operator's own TLS site, with its own locations; ours are one include.
      const server = `  server {\n    listen 127.0.0.1:${port} ssl;\n    server_name localhost;\n` +
        `    ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n` +
        `    location / { return 200 "the operator's site\\n"; }\n` +
        `    include ${dir}/terrarium-locations.conf;\n  }`;
      await Deno.writeTextFile(join(dir, "nginx.conf"), mainConfig(dir, server));
      await checkNginx(dir, port, ca);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
});

Deno.test("the complete example site passes nginx -t and serves terrarium under /terrarium/ over TLS", async () => {
  await withRelay({ BASE_PATH: "/terrarium", TRUST_PROXY: "true" }, async (relay) => {
    const dir = await Deno.makeTempDir({ prefix: "terrarium-nginx-site-" });
    try {
      const { ca, cert, key } = await makeCertificate(dir);
      const [port, plainPort] = [freePort(), freePort()];
      await Deno.mkdir(join(dir, "www"));
      await Deno.writeTextFile(join(dir, "www", "index.html"), "<p>the static site</p>\n");
      await Deno.writeTextFile(
        join(dir, "terrarium-http.conf"),
        await shipped("nginx-terrarium-http.conf", relay, dir),
      );
      await Deno.writeTextFile(
        join(dir, "terrarium-locations.conf"),
        await shipped("nginx-terrarium-locations.conf", relay, dir),
      );
      // The shipped site with this machine's ports, certificate, web root and snippet path.
      const site = (await shipped("nginx-terrarium-site.conf", relay, dir))
        .replace(/^\s*listen \[::\].*\n/gm, "")
        .replace("listen 80;", `listen 127.0.0.1:${plainPort};`)
        .replace("listen 443 ssl http2;", `listen 127.0.0.1:${port} ssl http2;`)
        .replace("/etc/letsencrypt/live/example.com/fullchain.pem", cert)
        .replace("/etc/letsencrypt/live/example.com/privkey.pem", key)
        .replace("root /var/www/example.com;", `root ${dir}/www;`)
        .replace("include snippets/terrarium.conf;", `include ${dir}/terrarium-locations.conf;`);
      await Deno.writeTextFile(join(dir, "nginx.conf"), mainConfig(dir, site));
      await checkNginx(dir, port, ca);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
});

/** The http file as README "Two relays on one Redis" has it: the second server uncommented. */
async function shippedForPair(pair: RelayPair, dir: string): Promise<string> {
  const text = await Deno.readTextFile(join(SYSTEMD, "nginx-terrarium-http.conf"));
  assert(text.includes("\n    # server 127.0.0.1:4101;\n"), "the second relay's line to uncomment");
  return text
    .replace("server 127.0.0.1:4100;", `server 127.0.0.1:${pair.relay("a").port};`)
    .replace("# server 127.0.0.1:4101;", `server 127.0.0.1:${pair.relay("b").port};`)
    .replaceAll("/var/log/nginx/access.log", join(dir, "access.log"));
}

/**
 * Runs `fn` with Debian's nginx (the shipped http file with both relays in its upstream, the
 * locations file in a plain-HTTP server) in front of two relays on one Redis.
 */
async function withNginxPair(fn: (base: string, pair: RelayPair) => Promise<void>): Promise<void> {
  const relayEnv = { BASE_PATH: "/terrarium", TRUST_PROXY: "true", WEB_DIR: WEB_DIST };
  await withRelayPair(relayEnv, {}, async (pair) => {
    const dir = await Deno.makeTempDir({ prefix: "terrarium-nginx-pair-" });
    let nginx: { stop(): Promise<void> } | null = null;
    try {
      const port = freePort();
      await Deno.writeTextFile(join(dir, "terrarium-http.conf"), await shippedForPair(pair, dir));
      await Deno.writeTextFile(
        join(dir, "terrarium-locations.conf"),
        await shipped("nginx-terrarium-locations.conf", pair.relay("a"), dir),
      );
      const server = `  server {\n    listen 127.0.0.1:${port};\n    server_name localhost;\n` +
        `    include ${dir}/terrarium-locations.conf;\n  }`;
      await Deno.writeTextFile(join(dir, "nginx.conf"), mainConfig(dir, server));
      nginx = await startNginx(dir, port);
      await fn(`http://127.0.0.1:${port}/terrarium`, pair);
    } finally {
      await nginx?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}

Deno.test("two relays on one Redis in the one upstream: requests spread over both, and a visitor's page, session and message work", async () => {
  await withNginxPair(async (base, pair) => {
    const counted = () =>
      Promise.all(
        [pair.relay("a"), pair.relay("b")].map((r) =>
          metricTotal(r, "terrarium_http_requests_total")
        ),
      );
    const before = await counted();
    const page = await fetch(`${base}/`);
    assertEquals(page.status, 200);
    assert(/<html/i.test(await page.text()), "the page");
    const token = await visitorToken(base);
    const posted = await postMessage(base, token, "spread", "Which relay are you?");
    assertEquals(posted.status, 201, JSON.stringify(posted.body));
    // Read back through nginx more than once: each read may reach the other relay.
    for (let i = 0; i < 3; i++) {
      assertEquals(await chatHistory(base, token, "spread"), [posted.body]);
    }
    assertEquals((await request(`${base}/healthz`)).status, 200);
    const after = await counted();
    // Seven requests through nginx; each relay also counts the /metrics read before.
    const served = after.map((n, i) => n - before[i]! - 1);
    assertEquals(served[0]! + served[1]!, 7, `requests per relay: ${served}`);
    assert(served.every((n) => n >= 2), `round-robin reaches both relays: ${served}`);
    // One store: either relay has the message as acknowledged.
    for (const side of ["a", "b"] as const) {
      assertEquals(await chatHistory(pair.relay(side).url, token, "spread"), [posted.body]);
    }
  });
});

Deno.test("two relays on one Redis in the one upstream: the proxied chat works whichever relay each socket and request reaches", async () => {
  // The worker's socket, the visitor's sockets and every request are spread by round-robin:
  // the answer reaches the visitor across relays (the Redis event bus, issue 14).
  await withNginxPair(async (base) => {
    await driveChat(base);
  });
});
