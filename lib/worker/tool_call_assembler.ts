/**
 * Assembles streamed tool calls (SPEC §4). Deltas are keyed by `index`; a call's id and
 * name come in its first delta only, its arguments as JSON text split over many deltas,
 * and parallel calls may interleave. Some Ollama versions send index 0 for every call, so
 * a delta with a new non-empty id at an index that already holds another id starts a new
 * call (as does a new name without an id). Servers that repeat the id or name in every
 * delta are tolerated.
 */

/** A complete tool call of one step. */
export interface AssembledToolCall {
  id: string;
  name: string;
  /** Raw JSON text of the arguments ("{}" when the server sent none). */
  arguments: string;
}

/** One `delta.tool_calls[]` entry as servers send it. */
export interface ToolCallDelta {
  index?: number | null;
  id?: string | null;
  type?: string | null;
  function?: { name?: string | null; arguments?: string | null } | null;
}

/** Collects tool-call deltas into calls, in the order they started. */
export class ToolCallAssembler {
  #calls: AssembledToolCall[] = [];
  /** Which assembled call each server index currently feeds. */
  #byIndex = new Map<number, number>();

  /** Adds one delta. */
  push(delta: ToolCallDelta): void {
    const index = delta.index ?? 0;
    const name = delta.function?.name;
    let slot = this.#byIndex.get(index);
    const current = slot === undefined ? undefined : this.#calls[slot];
    // Another id, or another name, at the same index is another call; a repeat is not.
    if (
      current === undefined || (delta.id && current.id && delta.id !== current.id) ||
      (name && current.name && name !== current.name)
    ) {
      slot = this.#calls.length;
      this.#calls.push({ id: delta.id ?? "", name: "", arguments: "" });
      this.#byIndex.set(index, slot);
    }
    const call = this.#calls[slot!]!;
    if (delta.id && !call.id) call.id = delta.id;
    if (name && !call.name) call.name = name;
    if (delta.function?.arguments) call.arguments += delta.function.arguments;
  }

  /** How many calls have started. */
  get size(): number {
    return this.#calls.length;
  }

  /** The calls with a name; missing ids are made up, empty arguments become "{}". */
  calls(): AssembledToolCall[] {
    return this.#calls.filter((c) => c.name).map((c, i) => ({
      id: c.id || `call_${i}`,
      name: c.name,
      arguments: c.arguments.trim() || "{}",
    }));
  }
}
