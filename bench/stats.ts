/**
 * Latency statistics for the benchmark: a log-bucketed histogram (1 % relative precision
 * from 1 µs to 100 s) so a run of millions of deliveries costs a fixed ~15 KiB, not one
 * number per sample.
 */

/** Relative width of one bucket: a reported percentile is within 1 % of the true value. */
const GROWTH = 1.01;
const MIN_MS = 0.001;
const MAX_MS = 100_000;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = Math.ceil(Math.log(MAX_MS / MIN_MS) / LOG_GROWTH) + 1;

/** A summary of one latency distribution, in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** A histogram as plain data (its non-empty buckets), to pass between processes. */
export interface HistogramData {
  buckets: [index: number, count: number][];
  count: number;
  sum: number;
  max: number;
}

/** Latencies in milliseconds, bucketed on a log scale. */
export class LatencyHistogram {
  #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #max = 0;

  /** Records one latency (clamped to 1 µs – 100 s). */
  record(ms: number): void {
    const value = Math.min(Math.max(ms, MIN_MS), MAX_MS);
    const index = Math.floor(Math.log(value / MIN_MS) / LOG_GROWTH);
    this.#counts[index]!++;
    this.#count++;
    this.#sum += value;
    if (value > this.#max) this.#max = value;
  }

  /** How many latencies were recorded. */
  get count(): number {
    return this.#count;
  }

  /** The `p`-th percentile (0–100): the upper edge of its bucket, never above the maximum. */
  percentile(p: number): number {
    if (this.#count === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(MIN_MS * GROWTH ** (i + 1), this.#max);
    }
    return this.#max;
  }

  /** What was recorded, as plain data. */
  toJSON(): HistogramData {
    const buckets: [number, number][] = [];
    this.#counts.forEach((n, i) => n && buckets.push([i, n]));
    return { buckets, count: this.#count, sum: this.#sum, max: this.#max };
  }

  /** Adds what another histogram recorded (`toJSON()` of another process's). */
  add(data: HistogramData): void {
    for (const [i, n] of data.buckets) {
      if (Number.isInteger(i) && i >= 0 && i < BUCKETS) this.#counts[i]! += n;
    }
    this.#count += data.count;
    this.#sum += data.sum;
    if (data.max > this.#max) this.#max = data.max;
  }

  /** p50/p90/p99/max/mean of what was recorded. */
  summary(): LatencySummary {
    return {
      count: this.#count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      max: this.#count ? this.#max : NaN,
      mean: this.#count ? this.#sum / this.#count : NaN,
    };
  }
}

/** Summarises a small list of latencies exactly (the pipeline's few hundred tokens). */
export function summarize(values: number[]): LatencySummary {
  if (values.length === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  return {
    count: sorted.length,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: sorted.at(-1)!,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}
