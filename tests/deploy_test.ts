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

for (const unit of ["terrarium-relay", "terrarium-worker"]) {
  Deno.test(`${unit}.service verifies and its exposure is at most 1.5`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      // verify insists the binary exists; point ExecStart at one that does.
      const text = (await Deno.readTextFile(join(SYSTEMD, `${unit}.service`)))
        .replace(`/usr/local/bin/${unit}`, "/bin/true");
      const path = join(dir, `${unit}.service`);
      await Deno.writeTextFile(path, text);
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
