/**
 * `deno run --allow-read bench/cpu_profile_summary.ts FILE.cpuprofile [TOP]`: sums a V8 CPU
 * profile (`--cpu-prof`) per function, self and inclusive time as a share of the samples in
 * which JavaScript ran (idle, program and GC samples are counted apart). How issue 18's
 * profiles were read (docs/BENCHMARKS.md). A function on the stack twice in one sample counts
 * once in its inclusive time; time after an `await` is not inside its caller.
 */

/** The parts of a `.cpuprofile` this reads. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
}

/** Samples per function (`name file:line`), and the totals they are shares of. */
export interface ProfileSummary {
  samples: number;
  idle: number;
  /** Samples with something other than `(idle)` on top. */
  busy: number;
  self: Map<string, number>;
  inclusive: Map<string, number>;
}

/** The function a profile node stands for, as `name dir/file:line`. */
function label(frame: CpuProfile["nodes"][number]["callFrame"]): string {
  const file = frame.url.split("/").slice(-2).join("/");
  return `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
}

/** Sums `profile` per function. */
export function summarise(profile: CpuProfile): ProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const perNode = new Map<number, number>();
  for (const id of profile.samples) perNode.set(id, (perNode.get(id) ?? 0) + 1);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let idle = 0;
  for (const [id, count] of perNode) {
    const top = nodes.get(id);
    if (!top) continue;
    if (top.callFrame.functionName === "(idle)") {
      idle += count;
      continue;
    }
    const name = label(top.callFrame);
    self.set(name, (self.get(name) ?? 0) + count);
    const seen = new Set<string>();
    // Bounded by the tree's depth: every step goes to a parent, and the root has none.
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const node = nodes.get(at);
      if (!node || node.callFrame.functionName === "(root)") continue;
      const key = label(node.callFrame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + count);
    }
  }
  const samples = profile.samples.length;
  return { samples, idle, busy: samples - idle, self, inclusive };
}

/** The `top` largest entries of `counts` as "share % name" lines, shares of `busy`. */
export function topLines(counts: Map<string, number>, busy: number, top: number): string[] {
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, count]) =>
    `${(100 * count / Math.max(1, busy)).toFixed(1).padStart(6)} % ${name}`
  );
}

if (import.meta.main) {
  const [file, topArg] = Deno.args;
  if (!file) throw new TypeError("Usage: cpu_profile_summary.ts FILE.cpuprofile [TOP]");
  const top = Number(topArg ?? 40);
  const summary = summarise(JSON.parse(await Deno.readTextFile(file)) as CpuProfile);
  const lines = [
    `${summary.samples} samples, ${summary.idle} idle (${
      (100 * summary.idle / Math.max(1, summary.samples)).toFixed(1)
    } %), ${summary.busy} busy; shares below are of the busy samples`,
    "--- self",
    ...topLines(summary.self, summary.busy, top),
    "--- inclusive",
    ...topLines(summary.inclusive, summary.busy, top),
  ];
  // deno-lint-ignore no-console
  console.log(lines.join("\n"));
}
