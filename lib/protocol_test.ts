import { assert, assertEquals } from "../tests/_assert.ts";
import { ERROR_CODES, normaliseReportTime, WorkerStatusRequest } from "./protocol.ts";

Deno.test("normaliseReportTime reads Python's isoformat() times, zone-less ones as UTC", () => {
  const cases: [string, string | null][] = [
    ["2026-12-01T21:49:30.158299", "2026-12-01T21:49:30.158Z"],
    ["2026-12-01T21:49:30", "2026-12-01T21:49:30.000Z"],
    ["2026-12-01T21:49:30.158299+00:00", "2026-12-01T21:49:30.158Z"],
    ["2026-12-01T23:49:30+0200", "2026-12-01T21:49:30.000Z"],
    ["2026-12-01T21:49:30.158Z", "2026-12-01T21:49:30.158Z"],
    ["2026-13-01T21:49:30", null],
    ["yesterday", null],
    ["2026-12-01", null],
    ["2026-12-01t21:49:30", null],
  ];
  for (const [input, expected] of cases) assertEquals(normaliseReportTime(input), expected, input);
});

Deno.test("a status report may carry nulls and zone-less times, as the original worker sends", () => {
  const empty = { status: "unknown", detail: null, checkedAt: null, latencyMs: null };
  const parsed = WorkerStatusRequest.parse({
    agentApi: { status: "online", detail: null, checkedAt: "2026-12-01T21:49:30.158299" },
    llm: empty,
  });
  assertEquals(parsed.agentApi, {
    status: "online",
    detail: "",
    checkedAt: "2026-12-01T21:49:30.158Z",
  });
  assertEquals(parsed.llm, { status: "unknown", detail: "", latencyMs: null });
  assertEquals(
    WorkerStatusRequest.safeParse({ agentApi: { ...empty, checkedAt: "soon" }, llm: empty })
      .success,
    false,
  );
});

Deno.test("ERROR_CODES: every code is a 4xx or 5xx with a doc line, and every 5xx is retryable", () => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    assert(/^[a-z_]+$/.test(code), code);
    assert(info.status >= 400 && info.status < 600, `${code}: ${info.status}`);
    assert(info.doc.length > 0 && !info.doc.includes("\n"), `${code}: one doc line`);
    if (info.status >= 500) assert(info.retryable, `${code}: a 5xx is retryable`);
  }
});
