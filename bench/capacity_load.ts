/**
 * One load process of the capacity phase: opens its share of a step's chats (visitor
 * sockets, a turn each claimed by a simulated worker over the worker socket), prints
 * `READY`, waits for SIGUSR2, then streams every chat at a fixed token rate over the
 * worker socket or `POST /agent-chunk` the way lib/worker does (claim, chunks at growing
 * offsets with turnId and leaseId, reply), and prints `RESULT <json>`.
 *
 * Usage: `deno run --allow-all bench/capacity_load.ts '<job json>'` (bench/capacity.ts).
 */
import { postMessage } from "../tests/_clients.ts";
import { TEST_SECRETS } from "../tests/_relay_process.ts";
import { closeAll, opened, openVisitor, relaySession, type Target, wsUrl } from "./clients.ts";
import type { ChatPlan } from "./capacity_plan.ts";
import { dueMs, split } from "./capacity_plan.ts";
import { cpuMs } from "./proc.ts";
import { type HistogramData, LatencyHistogram } from "./stats.ts";

/** What one load process does in one step. */
export interface CapacityJob {
  target: Target;
  via: "socket" | "http";
  chats: ChatPlan[];
  /** Chats one simulated worker (one worker socket) carries; lib/worker allows up to 64. */
  chatsPerWorker: number;
  chunksPerSecond: number;
  seconds: number;
  /** Tells processes apart in worker ids. */
  index: number;
}

/** What one load process measured in its window. */
export interface CapacityLoadResult {
  chats: number;
  visitors: number;
  histogram: HistogramData;
  sent: number;
  scheduled: number;
  late: number;
  maxLagMs: number;
  expected: number;
  received: number;
  errors: number;
  firstError: string | null;
  cpuMs: number;
  wallMs: number;
}

const OPEN_BATCH = 100;
const CLAIM_BATCH = 50;
const GO_TIMEOUT_MS = 300_000;
const ACK_TIMEOUT_MS = 30_000;
const DRAIN_MS = 5_000;
/** Unmeasured rounds of one chunk per chat before the window. */
const WARM_ROUNDS = 5;
/** POSTs in flight at once over all chats (each chat has at most one, as lib/worker). */
const MAX_HTTP_IN_FLIGHT = 256;
const MARKER = '"content":"c';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const progress = (text: string) => Deno.stderr.writeSync(new TextEncoder().encode(`  ${text}\n`));

/** Counts deliveries of marked chunks `c<id>@<sent at>` while open. */
class Tracker {
  open = false;
  histogram = new LatencyHistogram();
  received = 0;
  #valid = 0;
  constructor(max: number) {
    this.#valid = max;
  }
  frame = (data: string, at: number): void => {
    if (!this.open) return;
    const start = data.indexOf(MARKER);
    if (start < 0) return;
    const atSign = data.indexOf("@", start);
    const end = data.indexOf('"', atSign);
    const id = Number(data.slice(start + MARKER.length, atSign));
    if (!(id >= 0 && id < this.#valid)) return;
    this.histogram.record(at - Number(data.slice(atSign + 1, end)));
    this.received++;
  };
}

/** A chat being streamed: its turn and how much text it has sent. */
interface LiveChat extends ChatPlan {
  turnId: string;
  leaseId: string;
  messageId: string;
  offset: number;
  text: string[];
  worker: WorkerLink;
  /** HTTP only: a POST of this chat is in flight, and how many tokens wait behind it. */
  busy: boolean;
  waiting: number[];
}

/** One simulated worker's socket, with acks matched to requests. */
interface WorkerLink {
  socket: WebSocket;
  request(event: Record<string, unknown>): Promise<Record<string, unknown>>;
  errors: string[];
}

async function openWorker(job: CapacityJob, n: number): Promise<WorkerLink> {
  const { target } = job;
  const socket = target.kind === "relay"
    ? new WebSocket(`${wsUrl(target.url)}/api/worker/updates?workerId=cap-${job.index}-${n}`, {
      headers: { "x-service-token": TEST_SECRETS.SERVICE_TOKEN },
    } as unknown as string)
    : new WebSocket(`${wsUrl(target.url)}/chat-worker`);
  await opened(socket, target.kind === "relay" ? (d) => d.includes('"type":"hello"') : null);
  const pending = new Map<string, (event: Record<string, unknown>) => void>();
  const errors: string[] = [];
  socket.onmessage = (e) => {
    const text = String(e.data);
    // Pushes (chat_activity) are frequent and need no parse.
    if (!text.includes('"ack"') && !text.includes('"error"')) return;
    const event = JSON.parse(text);
    if (event.type === "ack") pending.get(event.requestId)?.(event);
    else if (event.type === "error" && errors.length < 1000) errors.push(text.slice(0, 300));
  };
  socket.onclose = () => errors.push("worker socket closed");
  return {
    socket,
    errors,
    request(event) {
      const requestId = crypto.randomUUID();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(requestId);
          reject(new Error(`No ack for ${String(event.type)}`));
        }, ACK_TIMEOUT_MS);
        pending.set(requestId, (ack) => {
          clearTimeout(timer);
          pending.delete(requestId);
          resolve(ack);
        });
        socket.send(JSON.stringify({ ...event, requestId }));
      });
    },
  };
}

/** Opens a chat's turn as a visitor and a worker do: a message, then a claim. */
async function openTurn(job: CapacityJob, token: string, worker: WorkerLink, chat: ChatPlan) {
  const live: LiveChat = {
    ...chat,
    turnId: "",
    leaseId: "",
    messageId: "",
    offset: 0,
    text: [],
    worker,
    busy: false,
    waiting: [],
  };
  if (job.target.kind === "bare") return live;
  const posted = await postMessage(job.target.url, token, chat.chatId, "Benchmark, stream to me");
  if (posted.status !== 201 && posted.status !== 200) {
    throw new Error(`Cannot post the visitor message: ${posted.status}`);
  }
  const ack = await worker.request({ type: "claim", workerId: "bench", chatId: chat.chatId });
  // deno-lint-ignore no-explicit-any
  const turn = (ack.result as any)?.turn;
  if (!ack.ok || !turn?.id) throw new Error(`Claim failed: ${JSON.stringify(ack)}`);
  return { ...live, turnId: turn.id, leaseId: turn.leaseId, messageId: turn.messageId };
}

async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>) {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(...await Promise.all(items.slice(i, i + size).map(fn)));
  }
  return out;
}

async function run(job: CapacityJob): Promise<CapacityLoadResult> {
  const { target, chunksPerSecond } = job;
  const token = await relaySession(target);
  const scheduled = Math.floor(job.chats.length * chunksPerSecond * job.seconds);
  const tracker = new Tracker(scheduled);
  const visitorSlots = job.chats.flatMap((c) => Array.from({ length: c.visitors }, () => c));
  const sockets = await inBatches(
    visitorSlots,
    OPEN_BATCH,
    (c) => openVisitor(target, c.chatId, token, tracker.frame, true),
  );
  const groups = split(job.chats, Math.ceil(job.chats.length / job.chatsPerWorker));
  const workers = await Promise.all(groups.map((_, n) => openWorker(job, n)));
  const chats: LiveChat[] = [];
  for (const [n, group] of groups.entries()) {
    chats.push(...await inBatches(group, CLAIM_BATCH, (c) => openTurn(job, token, workers[n]!, c)));
  }
  progress(`${target.kind} load ${job.index}: ${chats.length} chats, ${sockets.length} visitors`);

  let sent = 0;
  let late = 0;
  let maxLagMs = 0;
  let expected = 0;
  let inFlight = 0;
  let streaming = true;
  const httpErrors: string[] = [];
  const interval = 1000 / chunksPerSecond;
  const chunkPath = (chat: LiveChat) =>
    target.kind === "relay"
      ? `${target.url}/api/chat/${chat.chatId}/agent-chunk`
      : `${target.url}/chat-chunk`;
  const headers = {
    "content-type": "application/json",
    "x-service-token": TEST_SECRETS.SERVICE_TOKEN,
    "x-worker-id": "bench",
  };

  const body = (chat: LiveChat, content: string) => {
    const chunk = {
      content,
      done: false,
      kind: "answer",
      offset: chat.offset,
      turnId: chat.turnId,
      leaseId: chat.leaseId,
    };
    chat.offset += content.length;
    chat.text.push(content);
    return chunk;
  };
  // The relay's route names the chat in its path; the floor finds it in the frame.
  const payloadOf = (chat: LiveChat, chunk: ReturnType<typeof body>) =>
    target.kind === "relay"
      ? JSON.stringify(chunk)
      : JSON.stringify({ type: "chunk", chatId: chat.chatId, ...chunk });
  const marked = () => `c${sent}@${performance.now().toFixed(3)}`;

  const post = (chat: LiveChat, dueAt: number) => {
    const lag = performance.now() - dueAt;
    if (lag > interval) late++;
    if (lag > maxLagMs) maxLagMs = lag;
    const payload = payloadOf(chat, body(chat, marked()));
    expected += chat.visitors;
    sent++;
    chat.busy = true;
    inFlight++;
    fetch(chunkPath(chat), { method: "POST", headers, body: payload }).then(async (res) => {
      await res.body?.cancel();
      if (res.status !== 200 && httpErrors.length < 1000) {
        httpErrors.push(`agent-chunk answered ${res.status}`);
      }
    }, (error) => httpErrors.push(String(error).slice(0, 300))).finally(() => {
      inFlight--;
      chat.busy = false;
      if (chat.waiting.length) blocked.push(chat);
      unblock();
    });
  };
  // lib/worker sends a chat's chunks one at a time: a token due while its chat's request is
  // out (or while the in-flight cap is reached) waits, and goes when both allow.
  const blocked: LiveChat[] = [];
  const unblock = () => {
    while (streaming && inFlight < MAX_HTTP_IN_FLIGHT && blocked.length) {
      const chat = blocked.shift()!;
      const due = chat.busy ? undefined : chat.waiting.shift();
      if (due !== undefined) post(chat, due);
    }
  };

  // Warm-up (unmarked, not counted): the JIT of both ends, and the HTTP connection pool.
  for (let round = 0; round < WARM_ROUNDS; round++) {
    if (job.via === "socket") {
      for (const chat of chats) {
        chat.worker.socket.send(
          JSON.stringify({ type: "chunk", chatId: chat.chatId, ...body(chat, "w") }),
        );
      }
    } else {
      await inBatches(chats, MAX_HTTP_IN_FLIGHT, async (chat) => {
        const res = await fetch(chunkPath(chat), {
          method: "POST",
          headers,
          body: payloadOf(chat, body(chat, "w")),
        });
        await res.body?.cancel();
        if (res.status !== 200) httpErrors.push(`warm-up agent-chunk answered ${res.status}`);
      });
    }
    await sleep(1000 / chunksPerSecond);
  }

  // SIGUSR2, not SIGUSR1: Deno opens its inspector on SIGUSR1, as Node does.
  const go = Promise.withResolvers<void>();
  const onGo = () => go.resolve();
  Deno.addSignalListener("SIGUSR2", onGo);
  // deno-lint-ignore no-console
  console.log(`READY ${chats.length}`);
  const goTimer = setTimeout(() => go.reject(new Error("No start signal")), GO_TIMEOUT_MS);
  await go.promise;
  clearTimeout(goTimer);
  Deno.removeSignalListener("SIGUSR2", onGo);

  const cpuBefore = cpuMs(Deno.pid);
  const startedAt = performance.now();
  const endAt = startedAt + job.seconds * 1000;
  tracker.open = true;
  let k = 0;
  // Bounded in count (scheduled sends) and time (the window and one token's grace).
  while (k < scheduled && performance.now() < endAt + interval) {
    const now = performance.now();
    while (k < scheduled && startedAt + dueMs(k, chats.length, chunksPerSecond) <= now) {
      const dueAt = startedAt + dueMs(k, chats.length, chunksPerSecond);
      const chat = chats[k % chats.length]!;
      k++;
      if (job.via === "socket") {
        const lag = performance.now() - dueAt;
        if (lag > interval) late++;
        if (lag > maxLagMs) maxLagMs = lag;
        const frame = { type: "chunk", chatId: chat.chatId, ...body(chat, marked()) };
        expected += chat.visitors;
        sent++;
        chat.worker.socket.send(JSON.stringify(frame));
      } else if (chat.busy || inFlight >= MAX_HTTP_IN_FLIGHT) {
        chat.waiting.push(dueAt);
        if (!chat.busy) blocked.push(chat);
      } else post(chat, dueAt);
    }
    const wait = startedAt + dueMs(k, chats.length, chunksPerSecond) - performance.now();
    await sleep(Math.max(0, Math.min(wait, 20)));
  }
  const wallMs = performance.now() - startedAt;
  const ownCpuMs = cpuMs(Deno.pid) - cpuBefore;
  // Tokens still waiting behind a slow POST at the end were never sent: the judge counts
  // them as missed (scheduled − sent).
  streaming = false;
  for (const chat of chats) chat.waiting = [];
  const drainUntil = performance.now() + DRAIN_MS;
  while ((tracker.received < expected || inFlight > 0) && performance.now() < drainUntil) {
    await sleep(20);
  }
  tracker.open = false;

  // Finish each turn as lib/worker does: the reply carries the whole text (not measured).
  if (target.kind === "relay") {
    await inBatches(chats, CLAIM_BATCH, (chat) =>
      chat.worker.request({
        type: "reply",
        chatId: chat.chatId,
        content: chat.text.join("") || "Benchmark reply",
        replyTo: chat.messageId,
        leaseId: chat.leaseId,
      }).catch((error) => httpErrors.push(`reply: ${String(error)}`)));
  }
  const errors = [...httpErrors, ...workers.flatMap((w) => w.errors)];
  await closeAll([...sockets, ...workers.map((w) => w.socket)]);
  return {
    chats: chats.length,
    visitors: sockets.length,
    histogram: tracker.histogram.toJSON(),
    sent,
    scheduled,
    late,
    maxLagMs,
    expected,
    received: tracker.received,
    errors: errors.length,
    firstError: errors[0] ?? null,
    cpuMs: ownCpuMs,
    wallMs,
  };
}

if (import.meta.main) {
  const job = JSON.parse(Deno.args[0] ?? "{}") as CapacityJob;
  const result = await run(job);
  // deno-lint-ignore no-console
  console.log(`RESULT ${JSON.stringify(result)}`);
  // Pooled HTTP connections and timers of the clients must not keep the process alive.
  Deno.exit(0);
}
