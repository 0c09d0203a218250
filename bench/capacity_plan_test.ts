import { assert, assertEquals } from "../tests/_assert.ts";
import {
  capacity,
  chatPlan,
  DEFAULT_LIMITS,
  dueMs,
  judge,
  type JudgedStep,
  loadProcesses,
  split,
  type StepFigures,
  stepUp,
} from "./capacity_plan.ts";

const good: StepFigures = {
  p99Ms: 12,
  lost: 0,
  errors: 0,
  late: 0,
  sent: 1000,
  scheduled: 1000,
  generatorCpuPercent: 40,
  busiestGeneratorPercent: 40,
};

Deno.test("chatPlan: one visitor per chat, several on every multiEvery-th, unique ids", () => {
  const plan = chatPlan(100, { multiEvery: 50, multiVisitors: 5 });
  assertEquals(plan.length, 100);
  assertEquals(new Set(plan.map((c) => c.chatId)).size, 100);
  assertEquals(plan.filter((c) => c.visitors === 5).map((c) => c.chatId), ["cap49", "cap99"]);
  assertEquals(plan.reduce((n, c) => n + c.visitors, 0), 108);
  assertEquals(chatPlan(3, { multiEvery: 0, multiVisitors: 5 }).map((c) => c.visitors), [1, 1, 1]);
  assertEquals(chatPlan(0, { multiEvery: 50, multiVisitors: 5 }), []);
});

Deno.test("split: contiguous groups, sizes within one, nothing lost or repeated", () => {
  const items = Array.from({ length: 10 }, (_, i) => i);
  assertEquals(split(items, 3), [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]);
  assertEquals(split(items, 1), [items]);
  // More parts than items: one item each, no empty groups.
  assertEquals(split([1, 2], 5), [[1], [2]]);
  assertEquals(split([], 3), [[]]);
  assertEquals(split(items, 0), [items]);
});

Deno.test("loadProcesses: one per perProcess chats unless forced, never zero", () => {
  assertEquals(loadProcesses(100, 1000), 1);
  assertEquals(loadProcesses(1000, 1000), 1);
  assertEquals(loadProcesses(2000, 1000), 2);
  assertEquals(loadProcesses(2001, 1000), 3);
  assertEquals(loadProcesses(0, 1000), 1);
  assertEquals(loadProcesses(100, 1000, 4), 4);
  // Forced above the chat count: one chat per process at most.
  assertEquals(loadProcesses(2, 1000, 4), 2);
});

Deno.test("dueMs: each chat's tokens one interval apart, the chats spread evenly within it", () => {
  // 4 chats at 20 tokens/s: one send every 12.5 ms, each chat every 50 ms.
  assertEquals([0, 1, 2, 3, 4].map((k) => dueMs(k, 4, 20)), [0, 12.5, 25, 37.5, 50]);
  assertEquals(dueMs(4, 4, 20) - dueMs(0, 4, 20), 1000 / 20);
  // The window's sends: chats × rate × seconds of them fit in the window.
  assert(dueMs(4 * 20 * 3 - 1, 4, 20) < 3000);
});

Deno.test("judge: holds within every limit; each broken limit is named", () => {
  assertEquals(judge(good), { holds: true, reasons: [], generatorSaturated: false });
  const slow = judge({ ...good, p99Ms: 50.5 });
  assertEquals([slow.holds, slow.reasons], [false, ["p99 50.5 ms > 50 ms"]]);
  assertEquals(judge({ ...good, p99Ms: 50 }).holds, true);
  assertEquals(judge({ ...good, lost: 1 }).reasons, ["1 lost"]);
  assertEquals(judge({ ...good, errors: 2 }).reasons, ["2 errors"]);
  // No deliveries at all: p99 is NaN, which must not pass.
  assertEquals(judge({ ...good, p99Ms: NaN }).holds, false);
});

Deno.test("judge: late and missed sends count against the share allowed", () => {
  assertEquals(judge({ ...good, late: 10 }).holds, true); // 1 %: allowed
  assertEquals(judge({ ...good, late: 11 }).reasons, ["11 of 1000 sends late or missed"]);
  assertEquals(judge({ ...good, sent: 985, late: 0 }).reasons, ["15 of 1000 sends late or missed"]);
  assertEquals(judge({ ...good, sent: 995, late: 6 }).holds, false);
});

Deno.test("judge: a saturated generator is flagged whether or not the step holds", () => {
  const limit = DEFAULT_LIMITS.generatorPercent;
  assertEquals(judge({ ...good, generatorCpuPercent: limit }).generatorSaturated, true);
  assertEquals(judge({ ...good, busiestGeneratorPercent: limit + 1 }).holds, true);
  assertEquals(judge({ ...good, busiestGeneratorPercent: limit + 1 }).generatorSaturated, true);
  assertEquals(judge({ ...good, generatorCpuPercent: limit - 1 }).generatorSaturated, false);
});

const verdictAt = (failFrom: number, saturated = false) => (chats: number): JudgedStep => ({
  chats,
  verdict: chats >= failFrom
    ? { holds: false, reasons: ["p99"], generatorSaturated: saturated }
    : { holds: true, reasons: [], generatorSaturated: false },
});

Deno.test("stepUp: ascending, deduplicated, stops after the first step that fails", async () => {
  const ran: number[] = [];
  const steps = await stepUp([1000, 100, 300, 2000, 300], (chats) => {
    ran.push(chats);
    return Promise.resolve(verdictAt(1000)(chats));
  });
  assertEquals(ran, [100, 300, 1000]);
  assertEquals(steps.map((s) => s.chats), [100, 300, 1000]);
  assertEquals(await stepUp([], () => Promise.reject(new Error("never"))), []);
});

Deno.test("capacity: largest count that held, the first that failed, and whose limit", () => {
  const steps = (counts: number[], at: (n: number) => JudgedStep) => counts.map(at);
  assertEquals(capacity(steps([100, 300, 1000], verdictAt(1000))), {
    holds: 300,
    failsAt: 1000,
    generatorBound: false,
  });
  assertEquals(capacity(steps([100, 300], verdictAt(300, true))), {
    holds: 100,
    failsAt: 300,
    generatorBound: true,
  });
  assertEquals(capacity(steps([100], verdictAt(100))), {
    holds: null,
    failsAt: 100,
    generatorBound: false,
  });
  assertEquals(capacity(steps([100, 300], verdictAt(Infinity))), {
    holds: 300,
    failsAt: null,
    generatorBound: false,
  });
  assertEquals(capacity([]), { holds: null, failsAt: null, generatorBound: false });
});
