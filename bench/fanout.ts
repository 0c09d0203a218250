/**
 * One fan-out phase: chunks go in through the worker socket or `POST`, every visitor
 * socket must receive each, and latency is receive time minus the send time embedded in
 * the chunk (one process, one clock). A phase is bounded by a chunk count and a deadline.
 */
import { type ChunkSource, type Via } from "./clients.ts";
import { cpuMs } from "./proc.ts";
import { LatencyHistogram, type LatencySummary } from "./stats.ts";
import { delay as sleep } from "../lib/delay.ts";

/** A fixed offered rate, or as fast as the server drains (a bounded window in flight). */
export type Mode = { kind: "rate"; chunksPerSecond: number } | { kind: "saturate"; window: number };

/** What one phase measured. */
export interface FanoutResult {
  sockets: number;
  via: Via;
  mode: "rate" | "saturate";
  offeredChunksPerSecond: number | null;
  chunksSent: number;
  deliveries: number;
  lost: number;
  /**
   * Frames that came to a socket with a chunk id not above its previous one: a repeat, or a
   * chunk after a later one. Counted only over the worker socket (one ordered stream; over HTTP
   * requests in flight may arrive in any order) and where the sockets are numbered (`frame`'s
   * third argument).
   */
  misordered?: number;
  seconds: number;
  deliveriesPerSecond: number;
  latency: LatencySummary;
  /** CPU of the server under test: its process, plus `alsoPids` (a second relay) summed. */
  serverCpuMs: number;
  cpuMsPer1000: number;
  /** CPU of a process reported beside the server's, not in it (redis-server), if any. */
  besideCpuMs?: number;
  besideCpuMsPer1000?: number;
}

/** The marker a chunk carries: `c<id>@<send time in ms>`. */
const MARKER = '"content":"c';

/** Tracks deliveries of the current phase; visitor sockets feed it every frame. */
export class DeliveryTracker {
  sockets = 0;
  #received = new Uint32Array(0);
  /** Per numbered socket, the last chunk id it received (-1: none yet). */
  #lastId = new Int32Array(0);
  #misordered = 0;
  #histogram = new LatencyHistogram();
  #deliveries = 0;
  #completed = 0;
  #lastAt = 0;
  #onComplete: (() => void) | null = null;

  /** Starts a phase for chunks 0..maxChunks-1 delivered to `sockets` sockets. */
  reset(sockets: number, maxChunks: number): void {
    this.sockets = sockets;
    this.#received = new Uint32Array(maxChunks);
    this.#lastId = new Int32Array(sockets).fill(-1);
    this.#misordered = 0;
    this.#histogram = new LatencyHistogram();
    this.#deliveries = 0;
    this.#completed = 0;
    this.#lastAt = 0;
  }

  /**
   * Handles one received frame; frames without the marker (states, pings) are ignored.
   * `socket` (0 … sockets-1) numbers the receiving socket, so order and repeats are checked.
   */
  frame = (data: string, at: number, socket?: number): void => {
    const start = data.indexOf(MARKER);
    if (start < 0) return;
    const atSign = data.indexOf("@", start);
    const end = data.indexOf('"', atSign);
    const id = Number(data.slice(start + MARKER.length, atSign));
    const sentAt = Number(data.slice(atSign + 1, end));
    if (!(id < this.#received.length)) return;
    if (socket !== undefined && socket < this.#lastId.length) {
      if (id <= this.#lastId[socket]!) this.#misordered++;
      else this.#lastId[socket] = id;
    }
    this.#histogram.record(at - sentAt);
    this.#deliveries++;
    this.#lastAt = at;
    if (++this.#received[id]! === this.sockets) {
      this.#completed++;
      this.#onComplete?.();
    }
  };

  get completed(): number {
    return this.#completed;
  }
  get misordered(): number {
    return this.#misordered;
  }
  get deliveries(): number {
    return this.#deliveries;
  }
  get lastAt(): number {
    return this.#lastAt;
  }
  get histogram(): LatencyHistogram {
    return this.#histogram;
  }

  /** Resolves at the next completed chunk or after `ms`, whichever comes first. */
  nextCompletion(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.#onComplete = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}

/** Requests allowed in flight at once when chunks go over HTTP. */
const MAX_HTTP_IN_FLIGHT = 16;
/** How long a phase waits for the last chunks after sending stopped. */
const DRAIN_MS = 5_000;

/** Runs one phase against the sockets `tracker` counts for. */
export async function runPhase(
  source: ChunkSource,
  tracker: DeliveryTracker,
  options: {
    pid: number;
    /** More processes of the server under test (relay B of a cross-relay pair), CPU summed. */
    alsoPids?: number[];
    /** A process whose CPU is reported beside the server's (redis-server). */
    besidePid?: number;
    via: Via;
    mode: Mode;
    seconds: number;
    maxChunks: number;
  },
): Promise<FanoutResult> {
  const { mode, maxChunks } = options;
  tracker.reset(tracker.sockets, maxChunks);
  const serverPids = [options.pid, ...(options.alsoPids ?? [])];
  const serverCpu = () => serverPids.reduce((sum, pid) => sum + cpuMs(pid), 0);
  const besideCpu = () => (options.besidePid === undefined ? 0 : cpuMs(options.besidePid));
  const cpuBefore = serverCpu();
  const besideBefore = besideCpu();
  const startedAt = performance.now();
  const deadline = startedAt + options.seconds * 1000;
  let sent = 0;
  let inFlight = 0;
  let failures = 0;
  const send = () => {
    const id = sent++;
    inFlight++;
    source.send(`c${id}@${performance.now().toFixed(3)}`, options.via).catch(() => failures++)
      .finally(() => inFlight--);
  };

  if (mode.kind === "rate") {
    const interval = 1000 / mode.chunksPerSecond;
    while (sent < maxChunks && performance.now() < deadline) {
      const due = startedAt + sent * interval;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      // A fixed offered rate: chunks go out on schedule whether or not the last arrived;
      // only HTTP is capped in flight so a stuck server cannot pile up requests.
      if (options.via === "http" && inFlight >= MAX_HTTP_IN_FLIGHT * 4) {
        await sleep(1);
        continue;
      }
      send();
    }
  } else {
    while (sent < maxChunks && performance.now() < deadline) {
      const httpFull = options.via === "http" && inFlight >= MAX_HTTP_IN_FLIGHT;
      if (sent - tracker.completed >= mode.window || httpFull) {
        await tracker.nextCompletion(Math.min(50, deadline - performance.now()));
        continue;
      }
      send();
    }
  }
  const drainUntil = performance.now() + DRAIN_MS;
  while (tracker.completed < sent && performance.now() < drainUntil) {
    await tracker.nextCompletion(50);
  }
  while (inFlight > 0 && performance.now() < drainUntil) await sleep(5);
  // CPU ticks land late; give the server a moment to go idle before reading.
  await sleep(50);
  const serverCpuMs = serverCpu() - cpuBefore;
  const besideCpuMs = besideCpu() - besideBefore;
  const seconds = Math.max((tracker.lastAt || performance.now()) - startedAt, 1) / 1000;
  const deliveries = tracker.deliveries;
  if (failures) throw new Error(`${failures} chunk sends failed`);
  return {
    sockets: tracker.sockets,
    via: options.via,
    mode: mode.kind,
    offeredChunksPerSecond: mode.kind === "rate" ? mode.chunksPerSecond : null,
    chunksSent: sent,
    deliveries,
    lost: sent * tracker.sockets - deliveries,
    // Over HTTP several chunks are in flight at once and may reach the server in any order.
    ...(options.via === "socket" ? { misordered: tracker.misordered } : {}),
    seconds,
    deliveriesPerSecond: deliveries / seconds,
    latency: tracker.histogram.summary(),
    serverCpuMs,
    cpuMsPer1000: deliveries ? serverCpuMs / (deliveries / 1000) : NaN,
    ...(options.besidePid === undefined ? {} : {
      besideCpuMs,
      besideCpuMsPer1000: deliveries ? besideCpuMs / (deliveries / 1000) : NaN,
    }),
  };
}

/**
 * The better of two runs of one phase (rounds alternate servers to spread the machine's slow
 * moments): more deliveries/s at saturation, lower p50 at a fixed rate.
 */
export function better(a: FanoutResult, b: FanoutResult): FanoutResult {
  if (a.mode === "saturate") return b.deliveriesPerSecond > a.deliveriesPerSecond ? b : a;
  return b.latency.p50 < a.latency.p50 ? b : a;
}
