/**
 * The shipped systemd units pass `systemd-analyze verify` and score low on
 * `systemd-analyze security`. (The nginx files are tested in nginx_test.ts.)
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./_assert.ts";

const SYSTEMD = fileURLToPath(new URL("../systemd", import.meta.url));

async function run(cmd: string, args: string[]): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, output: text };
}

// The template (two relays on one host, on one Redis) as the instance on port 4101.
const UNITS = [
  { file: "terrarium-relay.service", binary: "terrarium-relay", instance: "" },
  { file: "terrarium-worker.service", binary: "terrarium-worker", instance: "" },
  { file: "terrarium-relay@.service", binary: "terrarium-relay", instance: "4101" },
];

for (const { file, binary, instance } of UNITS) {
  Deno.test(`${file} verifies and its exposure is at most 1.5`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      // verify insists the binary exists; point ExecStart at one that does.
      const text = (await Deno.readTextFile(join(SYSTEMD, file)))
        .replace(`/usr/local/bin/${binary}`, "/bin/true");
      await Deno.writeTextFile(join(dir, file), text);
      const path = join(dir, file.replace("@.", `@${instance}.`));
      const verify = await run("systemd-analyze", ["verify", path]);
      assertEquals(verify.code, 0, verify.output);
      const security = await run("systemd-analyze", ["security", "--offline=yes", path]);
      const score = Number(/Overall exposure level for .*?: ([\d.]+)/.exec(security.output)?.[1]);
      assert(score <= 1.5, `exposure ${score}:\n${security.output}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/** A unit's settings, one "Key=value" per line, comments and blank lines left out. */
function settings(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

Deno.test("terrarium-relay@.service is terrarium-relay.service but for its port, cache and state lines", async () => {
  // One source of truth for the hardening: the template may differ only where an instance must.
  const instanceKeys =
    /^(Description|ExecStart|CacheDirectory|Environment|StateDirectory|StateDirectoryMode)=/;
  const single = settings(await Deno.readTextFile(join(SYSTEMD, "terrarium-relay.service")));
  const template = settings(await Deno.readTextFile(join(SYSTEMD, "terrarium-relay@.service")));
  assertEquals(
    template.filter((l) => !instanceKeys.test(l)),
    single.filter((l) => !instanceKeys.test(l)),
  );
  // Each instance listens on its own port and keeps its own cache; nothing on disk to share.
  assert(template.includes("ExecStart=/usr/bin/env PORT=%i /usr/local/bin/terrarium-relay"));
  assert(template.includes("CacheDirectory=terrarium-relay-%i"));
  assert(!template.some((l) => l.startsWith("StateDirectory=")), "no KV file for an instance");
});
