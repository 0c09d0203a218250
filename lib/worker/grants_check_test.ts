import { assertEquals } from "../../tests/_assert.ts";
import { checkGrants } from "./grants_check.ts";

const GRANTS = {
  net: ["127.0.0.1:9"],
  read: ["/tmp"],
  write: ["/tmp"],
  env: ["HOME"],
  denyNet: [],
};

Deno.test("checkGrants() reports blanket permissions as broader than needed", async () => {
  // The test runner has -A: nothing is missing and everything is broader.
  const report = await checkGrants(GRANTS);
  assertEquals(report.missing, []);
  assertEquals(report.broader.includes("running subprocesses"), true);
});
