import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { Logger } from "../log.ts";
import { AccessGuard } from "./access_guard.ts";
import { RelayError } from "./errors.ts";
import { BASE_DELAY_MS, FailureBudget, MAX_DELAY_MS } from "./failure_budget.ts";

/** A guard on a clock the test sets, whose waits are recorded instead of slept. */
function guard(globalFailures: number, maxFailures = 5) {
  const waits: number[] = [];
  const warnings: string[] = [];
  const clock = { now: 0 };
  const log = new Logger("test", "warn", (line) => warnings.push(line));
  const g = new AccessGuard("right", {
    maxFailures,
    lockoutSeconds: 900,
    globalFailures,
    log,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    now: () => clock.now,
  });
  return { g, waits, warnings, clock };
}

async function codeOf(promise: Promise<void>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    return (error as RelayError).code;
  }
}

Deno.test("FailureBudget: free within the budget, then 250 ms doubling per tenth, up to 10 s", () => {
  const budget = new FailureBudget(10, 900_000);
  for (let i = 0; i < 10; i++) budget.record(0);
  assertEquals(budget.delayMs(0), 0);
  budget.record(0);
  assertEquals(budget.delayMs(0), BASE_DELAY_MS);
  budget.record(0);
  assertEquals(budget.delayMs(0), 2 * BASE_DELAY_MS);
  for (let i = 0; i < 50; i++) budget.record(0);
  assertEquals(budget.delayMs(0), MAX_DELAY_MS);
  // Failures age out of the window.
  assertEquals(budget.delayMs(901_000), 0);
});

Deno.test("AccessGuard: a locked-out key does not refuse the right code to another key", async () => {
  const { g } = guard(1000, 3);
  for (let i = 0; i < 3; i++) {
    assertEquals(await codeOf(g.check("2001:db8:1:2::/64", "x")), "bad_access_code");
  }
  assertEquals(await codeOf(g.check("2001:db8:1:2::/64", "right")), "locked_out");
  assertEquals(await codeOf(g.check("2001:db8:1:3::/64", "right")), "ok");
  assertEquals(await codeOf(g.check("192.0.2.1", "right")), "ok");
});

Deno.test("AccessGuard: parallel wrong codes from one key are judged one at a time, so the lockout holds", async () => {
  const { g } = guard(1000, 3);
  const codes = await Promise.all(
    Array.from({ length: 20 }, (_, i) => codeOf(g.check("192.0.2.9", `guess-${i}`))),
  );
  const count = (code: string) => codes.filter((c) => c === code).length;
  assertEquals(count("bad_access_code"), 3, codes.join());
  assertEquals(count("locked_out"), 13, codes.join());
  assertEquals(count("rate_limited"), 4, "sixteen queue per key; the rest are refused");
});

Deno.test("AccessGuard: past the global budget every check waits, the right code too, and it warns once", async () => {
  const { g, waits, warnings, clock } = guard(4);
  clock.now = 1_000;
  for (let i = 0; i < 4; i++) await assertRejects(() => g.check(`192.0.2.${i}`, "x"));
  assertEquals([waits, warnings.length, g.delayMs()], [[], 0, 0]);
  await assertRejects(() => g.check("192.0.2.10", "x")); // the fifth: over budget
  assertEquals(g.delayMs(), BASE_DELAY_MS);
  assertEquals(warnings.length, 1);
  assert(warnings[0]!.includes("slowed"), warnings[0]);
  // Everyone waits now, a right code from a fresh key included, and the delay grows.
  clock.now = 5_000;
  await g.check("198.51.100.1", "right");
  assertEquals(waits.at(-1), BASE_DELAY_MS);
  clock.now = 60_000;
  await assertRejects(() => g.check("198.51.100.2", "x"));
  clock.now = 120_000;
  await assertRejects(() => g.check("198.51.100.3", "x"));
  assert(g.delayMs() > BASE_DELAY_MS, `delay ${g.delayMs()}`);
  assertEquals(warnings.length, 1, "one warning per period, not per request");
  // The gauge's reading ages out with the period, whatever checks come.
  clock.now = 120_000 + 900_000;
  assertEquals(g.delayMs(), 0);
});

Deno.test("AccessGuard: while slowed, one waiting check per key and a bounded queue", async () => {
  const pending: (() => void)[] = [];
  const clock = { now: 0 };
  const g = new AccessGuard("right", {
    maxFailures: 1000,
    lockoutSeconds: 900,
    globalFailures: 1,
    sleep: () => new Promise<void>((resolve) => pending.push(resolve)),
    now: () => clock.now,
  });
  for (let i = 0; i < 100; i++) g.check(`k${i}`, "x").catch(() => {});
  // Started in one tick, each judged before any failure was counted; let any waits end.
  while (pending.length) pending.shift()!();
  await new Promise((resolve) => setTimeout(resolve, 0));
  clock.now = 1_000;
  const first = g.check("same", "x").catch(() => {});
  assertEquals(await codeOf(g.check("same", "right")), "rate_limited");
  // Starts are spaced: enough parallel keys push the wait past 30 s, refused with a reason.
  const codes = new Set<string>();
  for (let i = 0; i < 400; i++) {
    const code = await Promise.race([
      codeOf(g.check(`p${i}`, "x")),
      new Promise<string>((resolve) => setTimeout(() => resolve("waiting"), 0)),
    ]);
    codes.add(code);
  }
  assert(codes.has("auth_busy"), [...codes].join());
  while (pending.length) pending.shift()!();
  await first;
});
