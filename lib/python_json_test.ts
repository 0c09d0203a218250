// Expected strings were printed by CPython 3 `json.dumps(json.loads(s), separators=(",", ":"),
// sort_keys=True)`; they are literals so the test needs no Python.
import { assertEquals, assertThrows } from "../tests/_assert.ts";
import { pythonCanonicalJson, pythonFloatRepr } from "./python_json.ts";

Deno.test("pythonCanonicalJson matches Python's sorted compact dumps for worker bodies", () => {
  const cases: [string, string][] = [
    [
      '{"content": "héllo 😀", "done": false}',
      '{"content":"h\\u00e9llo \\ud83d\\ude00","done":false}',
    ],
    [
      '{"llm":{"status":"online","detail":null,"checkedAt":"2026-12-01T21:49:30.158299",' +
      '"latencyMs":12.5},"agentApi":{"status":"online","detail":"Ok — fine","checkedAt":null,' +
      '"latencyMs":null}}',
      '{"agentApi":{"checkedAt":null,"detail":"Ok \\u2014 fine","latencyMs":null,"status":"online"},' +
      '"llm":{"checkedAt":"2026-12-01T21:49:30.158299","detail":null,"latencyMs":12.5,"status":"online"}}',
    ],
    [
      '  {"nested": {"deeper": {"list": [{"k": "日本"}, [], {}]}}}  ',
      '{"nested":{"deeper":{"list":[{"k":"\\u65e5\\u672c"},[],{}]}}}',
    ],
  ];
  for (const [input, python] of cases) assertEquals(pythonCanonicalJson(input), python, input);
});

Deno.test("pythonCanonicalJson prints numbers as Python reads and reprs them", () => {
  assertEquals(
    pythonCanonicalJson(
      "[1.0, 1e16, 1e15, 0.0001, 0.00001, -0.0, -0, 12345678901234567890, 1E400, -1e-400, " +
        "5e-324, 1.7976931348623157e308, 123456789012345678.0, 0.1, 100, 2.5e-7]",
    ),
    "[1.0,1e+16,1000000000000000.0,0.0001,1e-05,-0.0,0,12345678901234567890,Infinity,-0.0," +
      "5e-324,1.7976931348623157e+308,1.2345678901234568e+17,0.1,100,2.5e-07]",
  );
  assertEquals(pythonFloatRepr(1 / 3), "0.3333333333333333");
  assertEquals(pythonFloatRepr(-1234.5e20), "-1.2345e+23");
  assertThrows(() => pythonCanonicalJson("1".repeat(4301)));
  assertEquals(pythonCanonicalJson("1".repeat(4300)), "1".repeat(4300));
});

Deno.test("pythonCanonicalJson sorts keys by code point, keeps the last duplicate and escapes like Python", () => {
  assertEquals(
    pythonCanonicalJson('{"z":1,"\\uffff":1,"\\ud83d\\ude00":2,"":[],"a":0, "é": 3}'),
    '{"":[],"a":0,"z":1,"\\u00e9":3,"\\uffff":1,"\\ud83d\\ude00":2}',
  );
  assertEquals(
    pythonCanonicalJson('{"b": 1, "a": {"z": null}, "a": {"y": true}}'),
    '{"a":{"y":true},"b":1}',
  );
  assertEquals(
    pythonCanonicalJson(
      '"tab\\t nl\\n cr\\r bs\\b ff\\f q\\" bsl\\\\ sl\\/ del\\u007f nul\\u0000 lone\\ud800 x"',
    ),
    '"tab\\t nl\\n cr\\r bs\\b ff\\f q\\" bsl\\\\ sl/ del\\u007f nul\\u0000 lone\\ud800 x"',
  );
  // Raw DEL on the wire is escaped too (Python escapes everything outside space..~).
  assertEquals(pythonCanonicalJson('"a\u007fb"'), '"a\\u007fb"');
});

Deno.test("pythonCanonicalJson refuses what json.loads or JSON.parse refuse", () => {
  for (
    const bad of [
      "",
      "{",
      '{"a":1,}',
      "[1,]",
      "NaN",
      "Infinity",
      "01",
      "1.",
      ".5",
      '"raw\nnewline"',
      '"\\x41"',
      '"\\u12"',
      "{} {}",
      "tru",
      '{"a" 1}',
      "[".repeat(100) + "]".repeat(100),
    ]
  ) {
    const error = assertThrows(() => pythonCanonicalJson(bad), "Invalid JSON");
    assertEquals(error instanceof SyntaxError, true, JSON.stringify(bad));
  }
});
