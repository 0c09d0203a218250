import { assertEquals } from "../../tests/_assert.ts";
import { fail, formatResult, ok, runChecks } from "./check.ts";

Deno.test("runChecks() runs in order, reports each result, and turns a throw into a failure", async () => {
  const seen: string[] = [];
  const results = await runChecks([
    { name: "first", run: () => ok("fine") },
    { name: "second", run: () => fail("broken", "mend it") },
    {
      name: "third",
      run: () => {
        throw new Error("Cannot read it");
      },
    },
  ], (r) => seen.push(formatResult(r)));
  assertEquals(results.map((r) => r.status), ["ok", "fail", "fail"]);
  assertEquals(seen, [
    "ok    first: fine",
    "FAIL  second: broken → mend it",
    "FAIL  third: Cannot read it",
  ]);
});
