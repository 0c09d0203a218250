/**
 * The latency the pipeline adds to the model's tokens (SPEC §8): our demo model server (in
 * the load process, so emits and receives share one clock) streams an answer through a
 * real worker process and the relay to a visitor socket. Each model delta is matched to
 * the moment the visitor's text of that kind first reached the delta's end.
 */
import { join } from "node:path";
import { startModelServer } from "../lib/demo_model/model_server.ts";
import { runArgs } from "../lib/tasks/launch.ts";
import { postMessage } from "../tests/_clients.ts";
import { workerEnv, writeWorkerEnv } from "../tests/_worker_process.ts";
import { closeAll, openVisitor, relaySession, type Target } from "./clients.ts";
import { spawnPinned } from "./process.ts";
import { type LatencySummary, summarize } from "./stats.ts";

/** What the pipeline run measured, over all turns. */
export interface PipelineResult {
  turns: number;
  tokensPerTurn: number;
  modelDelayMs: number;
  /** The first delta of each turn (the model's reasoning starts every answer). */
  firstToken: LatencySummary;
  /** The first answer delta of each turn. */
  firstAnswerToken: LatencySummary;
  /** Every delta after the first. */
  laterTokens: LatencySummary;
  /** Deltas whose text never reached the visitor as sent (should be 0). */
  unmatched: number;
}

type Kind = "reasoning" | "answer";
interface Emit {
  kind: Kind;
  /** Length of the kind's text once this delta is applied. */
  end: number;
  at: number;
}

const decoder = new TextDecoder();
const TURN_TIMEOUT_MS = 30_000;

/** Parses an SSE frame into the delta's kind and text, or null (comments, tool calls, usage). */
function deltaOf(frame: Uint8Array): { kind: Kind; text: string } | null {
  const line = decoder.decode(frame);
  if (!line.startsWith("data: {")) return null;
  const delta = JSON.parse(line.slice(6)).choices?.[0]?.delta;
  const reasoning = delta?.reasoning_content ?? delta?.reasoning;
  if (typeof reasoning === "string" && reasoning) return { kind: "reasoning", text: reasoning };
  if (typeof delta?.content === "string" && delta.content) {
    return { kind: "answer", text: delta.content };
  }
  return null;
}

/** Runs `turns` answers of `words` words each and measures every token's latency. */
export async function runPipeline(
  target: Target,
  options: { turns: number; words: number; modelDelayMs: number; workerCore: number | null },
): Promise<PipelineResult> {
  let emits: Emit[] = [];
  const modelTexts = { reasoning: 0, answer: 0 };
  const model = startModelServer({
    chunkDelayMs: options.modelDelayMs,
    onFrame(frame) {
      const at = performance.now();
      const delta = deltaOf(frame);
      if (!delta) return;
      modelTexts[delta.kind] += delta.text.length;
      emits.push({ kind: delta.kind, end: modelTexts[delta.kind], at });
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "terrarium-bench-worker-" });
  const envFile = await writeWorkerEnv(
    dir,
    workerEnv(target.url, model.url, dir, { LOG_LEVEL: "info", MAX_CONCURRENT_CHATS: "1" }),
  );
  const worker = spawnPinned(runArgs("worker", envFile), { core: options.workerCore });
  const first: number[] = [];
  const firstAnswer: number[] = [];
  const later: number[] = [];
  let unmatched = 0;
  try {
    await worker.waitForLine('"msg":"worker started"');
    const token = await relaySession(target);
    for (let turn = 0; turn < options.turns; turn++) {
      const chatId = `pipe-${turn}`;
      const texts = { reasoning: "", answer: "" };
      const reached: { kind: Kind; length: number; at: number }[] = [];
      let replied: () => void = () => {};
      const reply = new Promise<void>((resolve) => replied = resolve);
      const socket = await openVisitor(target, chatId, token, (data, at) => {
        const event = JSON.parse(data);
        if (event.type === "message" && event.sender === "Terra") replied();
        if (event.type !== "assistantChunk" || !(event.kind in texts)) return;
        const kind = event.kind as Kind;
        texts[kind] = texts[kind].slice(0, event.offset) + event.content;
        reached.push({ kind, length: texts[kind].length, at });
      });
      emits = [];
      modelTexts.reasoning = modelTexts.answer = 0;
      await postMessage(target.url, token, chatId, `[long ${options.words}] pipeline turn ${turn}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        reply,
        new Promise((_, reject) =>
          timer = setTimeout(() => reject(new Error(`No reply in ${chatId}`)), TURN_TIMEOUT_MS)
        ),
      ]);
      clearTimeout(timer);
      await closeAll([socket]);
      emits.forEach((emit, i) => {
        const seen = reached.find((r) => r.kind === emit.kind && r.length >= emit.end);
        if (!seen) return void unmatched++;
        const latency = seen.at - emit.at;
        if (i === 0) first.push(latency);
        else later.push(latency);
        if (emit.kind === "answer" && !emits.slice(0, i).some((e) => e.kind === "answer")) {
          firstAnswer.push(latency);
        }
      });
    }
  } finally {
    await worker.stop();
    await model.close();
    await Deno.remove(join(dir), { recursive: true }).catch(() => {});
  }
  return {
    turns: options.turns,
    tokensPerTurn: options.words,
    modelDelayMs: options.modelDelayMs,
    firstToken: summarize(first),
    firstAnswerToken: summarize(firstAnswer),
    laterTokens: summarize(later),
    unmatched,
  };
}
