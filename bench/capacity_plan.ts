/**
 * The capacity phase's pure rules: which chats a step opens, how they are split over load
 * processes and simulated workers, when a step holds (p99 within the limit, nothing lost,
 * every chunk sent on time) and when the load generator rather than the server gave out.
 */

/** One chat of a step and how many visitor sockets watch it. */
export interface ChatPlan {
  chatId: string;
  visitors: number;
}

/** How a step's chats look: most have one visitor, every `multiEvery`-th has several. */
export interface LayoutOptions {
  multiEvery: number;
  multiVisitors: number;
}

/** The chats of a step of `n` chats (ids unique within the step). */
export function chatPlan(n: number, layout: LayoutOptions, prefix = "cap"): ChatPlan[] {
  return Array.from({ length: n }, (_, i) => ({
    chatId: `${prefix}${i}`,
    visitors: layout.multiEvery > 0 && i % layout.multiEvery === layout.multiEvery - 1
      ? layout.multiVisitors
      : 1,
  }));
}

/** Splits `items` into `parts` contiguous groups whose sizes differ by at most one. */
export function split<T>(items: T[], parts: number): T[][] {
  const count = Math.max(1, Math.min(Math.floor(parts), items.length || 1));
  const groups: T[][] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const size = Math.floor(items.length / count) + (i < items.length % count ? 1 : 0);
    groups.push(items.slice(start, start + size));
    start += size;
  }
  return groups;
}

/** Load processes for `chats` chats: `forced` when given, else one per `perProcess` chats. */
export function loadProcesses(chats: number, perProcess: number, forced?: number): number {
  if (forced && forced > 0) return Math.min(Math.floor(forced), Math.max(1, chats));
  return Math.max(1, Math.ceil(chats / perProcess));
}

/**
 * When send number `k` of a process is due, in ms after the start: its chats' chunks are
 * spread evenly over each token interval, so `chats` chats at `perSecond` each make one
 * steady stream rather than a burst every interval.
 */
export function dueMs(k: number, chats: number, perSecond: number): number {
  return (k * 1000) / (perSecond * chats);
}

/** What a step measured, as far as the stop rule needs it. */
export interface StepFigures {
  p99Ms: number;
  lost: number;
  errors: number;
  /** Sends that went out later than one token interval after they were due. */
  late: number;
  sent: number;
  /** Sends the schedule called for in the window. */
  scheduled: number;
  /** CPU of all load processes over the window, as % of one core (they share one). */
  generatorCpuPercent: number;
  /** The busiest single load process, % of one core. */
  busiestGeneratorPercent: number;
}

/** The stop rule's limits. */
export interface Limits {
  p99Ms: number;
  /** Share of sends allowed to go out late or not at all. */
  lateShare: number;
  /** At or above this CPU % of one core, a load process is saturated. */
  generatorPercent: number;
}

export const DEFAULT_LIMITS: Limits = { p99Ms: 50, lateShare: 0.01, generatorPercent: 90 };

/** A step's verdict: whether it holds, why not, and whether the generator was saturated. */
export interface Verdict {
  holds: boolean;
  reasons: string[];
  generatorSaturated: boolean;
}

/** Judges one step against `limits`. */
export function judge(f: StepFigures, limits: Limits = DEFAULT_LIMITS): Verdict {
  const reasons: string[] = [];
  if (!(f.p99Ms <= limits.p99Ms)) reasons.push(`p99 ${fmt(f.p99Ms)} ms > ${limits.p99Ms} ms`);
  if (f.lost > 0) reasons.push(`${f.lost} lost`);
  if (f.errors > 0) reasons.push(`${f.errors} errors`);
  const missing = Math.max(0, f.scheduled - f.sent) + f.late;
  if (f.scheduled > 0 && missing / f.scheduled > limits.lateShare) {
    reasons.push(`${missing} of ${f.scheduled} sends late or missed`);
  }
  const generatorSaturated = f.generatorCpuPercent >= limits.generatorPercent ||
    f.busiestGeneratorPercent >= limits.generatorPercent;
  return { holds: reasons.length === 0, reasons, generatorSaturated };
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : String(v));

/** One judged step. */
export interface JudgedStep {
  chats: number;
  verdict: Verdict;
}

/**
 * Runs `step` for each count in ascending order until one does not hold (the steps after a
 * failure would only fail harder), and returns every step run.
 */
export async function stepUp<T extends JudgedStep>(
  counts: number[],
  step: (chats: number) => Promise<T>,
): Promise<T[]> {
  const done: T[] = [];
  for (const chats of [...new Set(counts)].sort((a, b) => a - b)) {
    const result = await step(chats);
    done.push(result);
    if (!result.verdict.holds) break;
  }
  return done;
}

/** The capacity found: the largest count that held, and whether the generator limited it. */
export interface Capacity {
  /** Largest count that held (null when even the first failed). */
  holds: number | null;
  /** The first count that did not hold (null when every step held: the limit is higher). */
  failsAt: number | null;
  /** The failing step's load generator was saturated: the limit may be the generator's. */
  generatorBound: boolean;
}

/** Reads the capacity off stepped results (as `stepUp` returns them). */
export function capacity(steps: JudgedStep[]): Capacity {
  let holds: number | null = null;
  for (const s of steps) {
    if (!s.verdict.holds) {
      return { holds, failsAt: s.chats, generatorBound: s.verdict.generatorSaturated };
    }
    holds = s.chats;
  }
  return { holds, failsAt: null, generatorBound: false };
}
