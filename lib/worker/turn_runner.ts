/**
 * Answers one claimed turn: keeps its lease renewed, loads the history, runs the tool loop
 * while streaming to the relay, and posts the reply. Cancel (from the visitor), a lost
 * lease and shutdown each abort the model request at once; a cancelled answer is kept and
 * posted as stopped, a lost lease posts nothing (another worker has the turn), shutdown
 * releases the lease so another worker can take it.
 */
import type { Logger } from "../log.ts";
import type { Turn } from "../protocol.ts";
import { AgentError } from "./agent_client.ts";
import { AnswerStream } from "./answer_stream.ts";
import type { ChatLog } from "./chat_log.ts";
import type { WorkerConfig } from "./config.ts";
import { conversationFor } from "./history.ts";
import type { RelayClient } from "./relay_client.ts";
import { runToolLoop, type StepModel } from "./tool_loop.ts";
import type { ToolRegistry } from "./tool_registry.ts";

/** Why a turn's work was aborted. */
export type AbortReason = "cancelled" | "lease_lost" | "shutdown";
export type TurnOutcome = "answered" | "stopped" | "failed" | AbortReason;

export interface TurnRunnerDeps {
  relay: Pick<
    RelayClient,
    "renew" | "release" | "sendChunk" | "setState" | "postReply" | "history"
  >;
  model: StepModel;
  registry: ToolRegistry;
  systemPrompt: string;
  config: WorkerConfig;
  log: Logger;
  chatLog?: ChatLog;
}

/** Plain words for a model failure, shown to the visitor. */
export function failureWords(error: unknown): string {
  if (error instanceof AgentError) {
    switch (error.kind) {
      case "unavailable":
        return "Terra's language model is not reachable right now. Please try again in a few minutes.";
      case "rate_limited":
        return "Terra's language model is busy. Please try again in a minute.";
      case "timeout":
        return "Terra's language model took too long to answer. Please try again.";
      case "stream_cut":
        return "The connection to Terra's language model broke off mid-answer. Please try again.";
      case "circuit_open":
        return "Terra's language model keeps failing, so Terra is pausing for a moment. Please try again shortly.";
      case "bad_response":
        return "Terra's language model sent an answer Terra could not read. Please try again.";
      default:
        break;
    }
  }
  return "Something went wrong while Terra was answering. Please try again.";
}

export class TurnRunner {
  #deps: TurnRunnerDeps;
  #active = new Map<string, AbortController>();

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
      (error) => {
        if ((error as { code?: string }).code === "lease_lost") abort("lease_lost");
        else log.warn("chunk not delivered", { chatId: turn.chatId, error });
      },
    );
    const reply = (content: string, stopped: boolean) =>
      relay.postReply(turn.chatId, {
        content,
        replyTo: turn.messageId,
        leaseId: turn.leaseId,
        ...(stopped ? { stopped: true } : {}),
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
        toolContext: { config, chatId: turn.chatId, log },
        toolsUsed,
      });
      controller.signal.throwIfAborted();
      await stream.finish();
      await reply(stream.answer, false);
      log.info("turn answered", { chatId: turn.chatId, turnId: turn.id, tools: result.toolsUsed });
      outcome = "answered";
      return outcome;
    } catch (error) {
      outcome = await this.#afterFailure(turn, controller.signal, error, stream, reply);
      return outcome;
    } finally {
      clearInterval(renewal);
      this.#active.delete(turn.id);
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
      await stream.finish();
      if (reason === "cancelled") {
        await reply(stream.answer, true);
        log.info("turn stopped by the visitor", { turnId: turn.id });
        return "stopped";
      }
      const words = failureWords(error);
      log.error("turn failed", { turnId: turn.id, error });
      // The reply closes the turn (no endless retries against a broken model); the state
      // that follows tells the visitor what went wrong, in plain words.
      await reply(stream.answer || words, stream.answer !== "");
      await relay.setState(turn.chatId, "error", words);
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
