/**
 * Answers one claimed turn: keeps its lease renewed, loads the history, runs the tool loop
 * while streaming to the relay, and posts the reply with the pages its tools returned.
 * Cancel (from the visitor), a lost lease and shutdown each abort the model request at
 * once; a cancelled answer is kept and posted as stopped, a lost lease posts nothing
 * (another worker has the turn), shutdown releases the lease so another worker can take
 * it. Any other failure is reported as the turn's failure (code and sentence, with the
 * text streamed so far as the interrupted part), never posted as Terra's reply (issue 16).
 */
import type { Logger } from "../log.ts";
import type { ComponentReport, Turn } from "../protocol.ts";
import { AgentError } from "./agent_client.ts";
import { AnswerStream } from "./answer_stream.ts";
import type { ChatLog } from "./chat_log.ts";
import type { WorkerConfig } from "./config.ts";
import { failureCode, failureWords } from "./failure_words.ts";
import { conversationFor } from "./history.ts";
import { type RelayClient, RelayRequestError } from "./relay_client.ts";
import type { RefusedChunk } from "./relay_socket.ts";
import { SourceList } from "./source_list.ts";
import { runToolLoop, type StepModel } from "./tool_loop.ts";
import type { ToolRegistry } from "./tool_registry.ts";

export { failureWords };

/** Why a turn's work was aborted. */
export type AbortReason = "cancelled" | "lease_lost" | "shutdown";
export type TurnOutcome = "answered" | "stopped" | "failed" | "handed_back" | AbortReason;

export interface TurnRunnerDeps {
  relay: Pick<
    RelayClient,
    "renew" | "release" | "sendChunk" | "setState" | "postReply" | "history" | "failTurn"
  >;
  model: StepModel;
  registry: ToolRegistry;
  systemPrompt: string;
  config: WorkerConfig;
  log: Logger;
  chatLog?: ChatLog;
  /**
   * What a turn just showed about the model, so the status chain need not wait for its
   * next poll: offline/degraded after a model failure, online after the next answer.
   */
  onModelStatus?: (report: ComponentReport) => void;
}

/** What a model failure says about the model's status. */
function modelStatusAfter(error: AgentError): ComponentReport {
  const down = error.kind === "unavailable" || error.kind === "circuit_open";
  return {
    status: down ? "offline" : "degraded",
    detail: `A visitor's question just failed: ${error.message}`,
    checkedAt: new Date().toISOString(),
    latencyMs: null,
  };
}

export class TurnRunner {
  #deps: TurnRunnerDeps;
  #active = new Map<string, AbortController>();
  /** The answer stream of each turn being answered, for refusals that come without an ack. */
  #streams = new Map<string, AnswerStream>();
  /** A failure was reported to the status chain and no answer has come since. */
  #modelTroubled = false;

  constructor(deps: TurnRunnerDeps) {
    this.#deps = deps;
  }

  /** Turns being answered now. */
  get activeCount(): number {
    return this.#active.size;
  }

  /** Stops a turn because the visitor asked to. */
  cancel(turnId: string): void {
    this.#active.get(turnId)?.abort("cancelled" satisfies AbortReason);
  }

  /**
   * The relay refused a chunk sent over the socket: a gap means it has less of the text than
   * the chunk assumed (resend it), a lost lease that another worker has the turn.
   */
  chunkRefused(chunk: RefusedChunk, code: string): void {
    if (chunk.turnId === null) return;
    if (code === "lease_lost") this.#active.get(chunk.turnId)?.abort("lease_lost");
    if (code === "chunk_gap" && chunk.offset !== undefined) {
      this.#streams.get(chunk.turnId)?.resync(chunk.kind, chunk.offset);
    }
  }

  /** Aborts every running turn (shutdown releases their leases). */
  abortAll(reason: AbortReason): void {
    for (const controller of this.#active.values()) controller.abort(reason);
  }

  /** Answers `turn`; never throws. */
  async run(turn: Turn): Promise<TurnOutcome> {
    const { relay, log, config } = this.#deps;
    const controller = new AbortController();
    this.#active.set(turn.id, controller);
    const abort = (reason: AbortReason) => controller.abort(reason);
    if (turn.cancelRequested) abort("cancelled");
    const leaseMs = Math.max(1_000, Date.parse(turn.leaseExpiresAt) - Date.now());
    const renewal = setInterval(() => {
      relay.renew(turn.id, turn.leaseId).then(
        (lease) => lease.cancelRequested && abort("cancelled"),
        (error) => {
          if ((error as { code?: string }).code === "lease_lost") abort("lease_lost");
          else log.warn("lease renewal failed", { turnId: turn.id, error });
        },
      );
    }, Math.max(300, Math.floor(leaseMs / 3)));

    const stream = new AnswerStream(
      (chunk) => relay.sendChunk(turn.chatId, { ...chunk, turnId: turn.id, leaseId: turn.leaseId }),
      (error, chunk) => {
        const code = (error as { code?: string }).code;
        if (code === "lease_lost") abort("lease_lost");
        else if (code === "chunk_gap") stream.resync(chunk.kind, chunk.offset);
        else log.warn("chunk not delivered", { chatId: turn.chatId, error });
      },
    );
    this.#streams.set(turn.id, stream);
    const sources = new SourceList();
    const reply = (content: string, stopped: boolean) =>
      relay.postReply(turn.chatId, {
        content,
        replyTo: turn.messageId,
        leaseId: turn.leaseId,
        ...(stopped ? { stopped: true } : {}),
        ...(sources.size ? { sources: sources.list() } : {}),
      });

    let question = "";
    const toolsUsed: string[] = [];
    let outcome: TurnOutcome = "failed";
    try {
      controller.signal.throwIfAborted();
      await relay.setState(turn.chatId, "processing", "Terra is thinking…");
      const history = await relay.history(turn.chatId);
      question = history.find((m) => m.id === turn.messageId)?.content ?? "";
      const result = await runToolLoop({
        model: this.#deps.model,
        registry: this.#deps.registry,
        systemPrompt: this.#deps.systemPrompt,
        conversation: conversationFor(history, turn.messageId, config.historyTokenBudget),
        maxToolSteps: config.maxToolSteps,
        stream,
        signal: controller.signal,
        toolContext: { config, chatId: turn.chatId, log, sources },
        toolsUsed,
      });
      controller.signal.throwIfAborted();
      await stream.finish();
      await reply(stream.answer, false);
      log.info("turn answered", {
        chatId: turn.chatId,
        turnId: turn.id,
        tools: result.toolsUsed,
        sources: sources.size,
      });
      if (this.#modelTroubled) {
        this.#modelTroubled = false;
        this.#deps.onModelStatus?.({
          status: "online",
          detail: "A visitor's question was just answered",
          checkedAt: new Date().toISOString(),
          latencyMs: null,
        });
      }
      outcome = "answered";
      return outcome;
    } catch (error) {
      outcome = await this.#afterFailure(turn, controller.signal, error, stream, reply);
      return outcome;
    } finally {
      clearInterval(renewal);
      this.#active.delete(turn.id);
      this.#streams.delete(turn.id);
      await this.#deps.chatLog?.append({
        chatId: turn.chatId,
        turnId: turn.id,
        outcome,
        question,
        answer: stream.answer,
        tools: toolsUsed,
      });
    }
  }

  async #afterFailure(
    turn: Turn,
    signal: AbortSignal,
    error: unknown,
    stream: AnswerStream,
    reply: (content: string, stopped: boolean) => Promise<unknown>,
  ): Promise<TurnOutcome> {
    if (error instanceof AgentError && error.kind !== "aborted" && !signal.aborted) {
      // Before anything else can fail: the header must turn amber/red within seconds.
      this.#modelTroubled = true;
      this.#deps.onModelStatus?.(modelStatusAfter(error));
    }
    const { relay, log } = this.#deps;
    const reason = signal.aborted ? signal.reason as AbortReason : null;
    try {
      if (reason === "lease_lost") {
        log.warn("lease lost; another worker has the turn", { turnId: turn.id });
        return "lease_lost";
      }
      if (reason === "shutdown") {
        await relay.release(turn.id, turn.leaseId);
        log.info("turn released for shutdown", { turnId: turn.id });
        return "shutdown";
      }
      if (relayTrouble(error)) {
        // The relay, not the model, failed (down, restarting, a full disk): that is not the
        // visitor's failed turn. Hand it back, so it is answered again once the relay is up
        // (if the relay cannot take even that, the lease expires to the same effect).
        log.warn("the relay failed mid-turn; the turn is handed back", {
          turnId: turn.id,
          code: (error as RelayRequestError).code,
        });
        await relay.release(turn.id, turn.leaseId);
        return "handed_back";
      }
      await stream.finish();
      if (reason === "cancelled") {
        await reply(stream.answer, true);
        log.info("turn stopped by the visitor", { turnId: turn.id });
        return "stopped";
      }
      const code = failureCode(error);
      log.error("turn failed", { turnId: turn.id, code, error });
      // The failure closes the turn (no endless retries against a broken model) and the
      // relay tells the visitor in plain words; the visitor's Retry re-opens it. What was
      // streamed stays, marked interrupted.
      await relay.failTurn(turn, {
        code,
        error: failureWords(error),
        ...(stream.answer ? { partial: stream.answer } : {}),
      });
      return "failed";
    } catch (followUp) {
      log.error("could not close the turn; its lease will expire", {
        turnId: turn.id,
        error: followUp,
      });
      return reason ?? "failed";
    }
  }
}

/** A relay that could not be reached or could not serve (5xx), as opposed to a refusal. */
function relayTrouble(error: unknown): boolean {
  return error instanceof RelayRequestError && (error.status === 0 || error.status >= 500);
}
