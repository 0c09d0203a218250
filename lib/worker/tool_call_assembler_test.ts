import { assertEquals } from "../../tests/_assert.ts";
import { ToolCallAssembler, type ToolCallDelta } from "./tool_call_assembler.ts";

function assemble(deltas: ToolCallDelta[]) {
  const assembler = new ToolCallAssembler();
  for (const delta of deltas) assembler.push(delta);
  return assembler.calls();
}

Deno.test("ToolCallAssembler joins argument pieces by index; id and name come once", () => {
  assertEquals(
    assemble([
      { index: 0, id: "call_a", type: "function", function: { name: "fetch_page", arguments: "" } },
      { index: 0, function: { arguments: '{"pa' } },
      { index: 0, function: { arguments: 'th":"/ab' } },
      { index: 0, function: { arguments: 'out"}' } },
    ]),
    [{ id: "call_a", name: "fetch_page", arguments: '{"path":"/about"}' }],
  );
});

Deno.test("ToolCallAssembler keeps interleaved parallel calls apart, in start order", () => {
  assertEquals(
    assemble([
      { index: 0, id: "a", function: { name: "get_profile", arguments: "" } },
      { index: 1, id: "b", function: { name: "search_site", arguments: "" } },
      { index: 1, function: { arguments: '{"query"' } },
      { index: 0, function: { arguments: "{" } },
      { index: 1, function: { arguments: ':"lantern"}' } },
      { index: 0, function: { arguments: "}" } },
    ]),
    [
      { id: "a", name: "get_profile", arguments: "{}" },
      { id: "b", name: "search_site", arguments: '{"query":"lantern"}' },
    ],
  );
});

Deno.test("ToolCallAssembler starts a new call for a new id at index 0 (Ollama)", () => {
  assertEquals(
    assemble([
      { index: 0, id: "call_1", function: { name: "get_profile", arguments: "{}" } },
      { index: 0, id: "call_2", function: { name: "search_site", arguments: '{"query":' } },
      { index: 0, function: { arguments: '"x"}' } },
    ]),
    [
      { id: "call_1", name: "get_profile", arguments: "{}" },
      { id: "call_2", name: "search_site", arguments: '{"query":"x"}' },
    ],
  );
});

Deno.test("ToolCallAssembler tolerates repeated ids and names, missing ids and empty arguments", () => {
  assertEquals(
    assemble([
      { index: 0, id: "same", function: { name: "get_profile" } },
      { index: 0, id: "same", function: { name: "get_profile", arguments: "" } },
      { function: { name: "list_repos", arguments: "" } },
      { index: 1, function: { arguments: "   " } },
    ]),
    [
      { id: "same", name: "get_profile", arguments: "{}" },
      { id: "call_1", name: "list_repos", arguments: "{}" },
    ],
  );
  assertEquals(
    assemble([{ index: 2, function: { name: "list_repos", arguments: '{"n":1}' } }]),
    [{ id: "call_0", name: "list_repos", arguments: '{"n":1}' }],
  );
});
