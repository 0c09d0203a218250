import { assertEquals } from "../tests/_assert.ts";
import { type CpuProfile, summarise, topLines } from "./cpu_profile_summary.ts";

const frame = (functionName: string, lineNumber = 0) => ({
  functionName,
  url: "file:///work/lib/relay/a.ts",
  lineNumber,
});

/** root → main → (handle → parse, handle → handle (recursion)); plus idle. */
const PROFILE: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)"), children: [2, 6] },
    { id: 2, callFrame: frame("main", 9), children: [3] },
    { id: 3, callFrame: frame("handle", 19), children: [4, 5] },
    { id: 4, callFrame: frame("parse", 29) },
    { id: 5, callFrame: frame("handle", 19) },
    { id: 6, callFrame: frame("(idle)") },
  ],
  samples: [4, 4, 3, 5, 6, 6, 6, 2],
};

Deno.test("summarise() counts self time on the top frame and inclusive time once per sample", () => {
  const summary = summarise(PROFILE);
  assertEquals(summary.samples, 8);
  assertEquals(summary.idle, 3);
  assertEquals(summary.busy, 5);
  assertEquals(summary.self.get("parse relay/a.ts:30"), 2);
  // handle: once as its own top frame, once through its recursive copy.
  assertEquals(summary.self.get("handle relay/a.ts:20"), 2);
  assertEquals(summary.inclusive.get("handle relay/a.ts:20"), 4);
  assertEquals(summary.inclusive.get("main relay/a.ts:10"), 5);
  assertEquals(summary.inclusive.has("(root) relay/a.ts:1"), false);
});

Deno.test("topLines() lists the largest shares of the busy samples first", () => {
  const summary = summarise(PROFILE);
  assertEquals(topLines(summary.inclusive, summary.busy, 2), [
    " 100.0 % main relay/a.ts:10",
    "  80.0 % handle relay/a.ts:20",
  ]);
});
