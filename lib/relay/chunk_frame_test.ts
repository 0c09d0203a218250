import fc from "fast-check";
import { WorkerClientEvent } from "../protocol.ts";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { chunkFrame } from "./chunk_frame.ts";

/** What the schema makes of `json`: its result, or "rejected". */
function bySchema(json: unknown): unknown {
  const parsed = WorkerClientEvent.safeParse(json);
  return parsed.success ? parsed.data : "rejected";
}

/** The hand check's answer in the same terms. */
function byHand(json: unknown): unknown {
  return chunkFrame(json) ?? "rejected";
}

const idChars = fc.constantFrom(..."AZaz09_-".split(""), "a", "Q", "7");
/** Ids around the rules: right, empty, too long, a character outside the set, a newline. */
const idLike = (max: number) =>
  fc.oneof(
    fc.string({ unit: idChars, minLength: 1, maxLength: max }),
    fc.string({ unit: idChars, minLength: max, maxLength: max + 2 }),
    fc.constantFrom("", "a b", "a\n", "é", "a.b", "a/b"),
    fc.string(),
  );
/** Any JSON value, and values around each field's rules. */
const anything = fc.jsonValue({ maxDepth: 2 });
const field = {
  type: fc.oneof(
    fc.constant("chunk"),
    fc.constant("chunk"),
    fc.constantFrom("Chunk", "ping"),
    anything,
  ),
  chatId: fc.oneof(idLike(64), anything),
  content: fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), anything),
  done: fc.oneof(fc.boolean(), anything),
  kind: fc.oneof(fc.constantFrom("answer", "reasoning", "tool", "Answer", ""), anything),
  offset: fc.oneof(
    fc.nat(),
    fc.integer(),
    fc.constantFrom(0, -0, 0.5, -1, 2 ** 53 - 1, 2 ** 53, 1e300, -1e-300),
    fc.double(),
    anything,
  ),
  turnId: fc.oneof(idLike(80), anything),
  leaseId: fc.oneof(idLike(80), anything),
  requestId: fc.oneof(fc.string(), anything),
  extra: anything,
};
/** Frames with any subset of the fields above (what a worker, or a fuzzer, may send). */
const frames = fc.record(field, { requiredKeys: [] }).map((frame) =>
  // As the socket sees it: through JSON text (no undefined, -0 kept as JSON keeps it).
  JSON.parse(JSON.stringify(frame)) as unknown
);

Deno.test("chunkFrame() takes exactly the chunk events WorkerClientEvent takes, with the same result", () => {
  fc.assert(
    fc.property(frames, (json) => {
      const schema = bySchema(json);
      const isChunk = typeof json === "object" && json !== null &&
        (json as { type?: unknown }).type === "chunk";
      // A frame of another type is the schema's alone: the hand check never takes it.
      if (!isChunk) return assertEquals(chunkFrame(json), null);
      assertEquals(byHand(json), schema);
    }),
    { numRuns: 20_000 },
  );
});

Deno.test("chunkFrame() leaves anything that is not an object with type chunk to the schema", () => {
  fc.assert(
    fc.property(anything, (json) => {
      if (typeof json === "object" && json !== null && "type" in json) return;
      assertEquals(chunkFrame(json), null);
    }),
  );
});

Deno.test("chunkFrame() takes the chunks a worker streams", () => {
  const valid = fc.record({
    type: fc.constant("chunk"),
    chatId: fc.string({ unit: idChars, minLength: 1, maxLength: 64 }),
    content: fc.string({ unit: "grapheme" }),
    done: fc.boolean(),
    kind: fc.constantFrom("answer", "reasoning", "tool"),
    offset: fc.nat(),
    turnId: fc.string({ unit: idChars, minLength: 1, maxLength: 80 }),
    leaseId: fc.string({ unit: idChars, minLength: 1, maxLength: 80 }),
  }, { requiredKeys: ["type", "chatId", "content"] });
  fc.assert(
    fc.property(valid, (json) => {
      const event = chunkFrame(json);
      assert(event, "taken");
      assertEquals(event, WorkerClientEvent.parse(json));
    }),
  );
});
