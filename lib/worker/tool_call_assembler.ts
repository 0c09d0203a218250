/**
 * Assembles streamed tool calls (SPEC §4): deltas are keyed by `index`; the id and name
 * come in a call's first delta only. Some Ollama versions send index 0 for every call, so
 * a new id at an index that already holds another call starts a new call.
 */

export interface AssembledToolCall {
  id: string;
  name: string;
  /** Raw JSON text of the arguments. */
  arguments: string;
}

/** One `delta.tool_calls[]` entry as servers send it. */
export interface ToolCallDelta {
  index?: number;
  id?: string | null;
  function?: { name?: string | null; arguments?: string | null } | null;
}

export class ToolCallAssembler {
  #calls: AssembledToolCall[] = [];
  /** Which assembled call each server index currently feeds. */
  #byIndex = new Map<number, number>();

  /** Adds one delta. */
  push(delta: ToolCallDelta): void {
    const index = delta.index ?? 0;
    let slot = this.#byIndex.get(index);
    const current = slot === undefined ? undefined : this.#calls[slot];
    if (current === undefined || (delta.id && current.id && delta.id !== current.id)) {
      slot = this.#calls.length;
      this.#calls.push({ id: delta.id ?? "", name: "", arguments: "" });
      this.#byIndex.set(index, slot);
    }
    const call = this.#calls[slot!]!;
    if (delta.id && !call.id) call.id = delta.id;
    if (delta.function?.name) call.name += delta.function.name;
    if (delta.function?.arguments) call.arguments += delta.function.arguments;
  }

  /** The calls so far; ids are filled in where a server sent none. */
  calls(): AssembledToolCall[] {
    return this.#calls.filter((c) => c.name).map((c, i) => ({ ...c, id: c.id || `call_${i}` }));
  }
}
