import { assertEquals } from "../../tests/_assert.ts";
import type { WorkerStateEvent } from "../../lib/protocol.ts";
import {
  beforeCountdown,
  countdownText,
  noticeFor,
  type NoticeInputs,
  sentence,
} from "./notices.ts";

const quiet: NoticeInputs = {
  workerState: null,
  connection: { state: "live", detail: "" },
  problem: null,
  availability: "online",
  name: "Terra",
  offlineText: "Terra is offline right now.",
};
const queued: WorkerStateEvent = {
  type: "workerState",
  chatId: "c",
  state: "queued",
  detail: "You're next in line",
  updatedAt: "2026-12-01T10:00:00.000Z",
  seq: 3,
};

Deno.test("a relay sentence without a full stop gets one before the countdown", () => {
  assertEquals(sentence("wait for a reply first"), "Wait for a reply first.");
  assertEquals(sentence("Done."), "Done.");
  assertEquals(countdownText(5), "Try again in 5 s.");
  assertEquals(
    beforeCountdown("Too many wrong access codes from your address; try again later"),
    "Too many wrong access codes from your address.",
  );
  assertEquals(countdownText(0), "You can try again now.");
  const notice = noticeFor({
    ...quiet,
    problem: { text: "Terra has not answered yet; wait for a reply first", until: 5_000 },
    nowMs: 1_000,
  });
  assertEquals(notice, {
    text: "Terra has not answered yet; wait for a reply first.",
    tone: "error",
    countdown: 4,
  });
});

Deno.test("while Terra is away the queue notice does not promise a place in line", () => {
  assertEquals(
    noticeFor({ ...quiet, workerState: queued })?.text,
    "Waiting for Terra: You're next in line",
  );
  const away = noticeFor({ ...quiet, workerState: queued, availability: "away" })!;
  assertEquals(away.text.includes("waiting for Terra to come online"), true);
  assertEquals(away.text.includes("next in line"), false);
  assertEquals(noticeFor({ ...quiet, availability: "away" })?.text, "Terra is offline right now.");
  assertEquals(noticeFor(quiet), null);
});

Deno.test("a failed turn is its row, not a notice; a failure without a turn is one", () => {
  const error = { ...queued, state: "error" as const, detail: "It broke" };
  assertEquals(noticeFor({ ...quiet, workerState: { ...error, turnId: "m1" } }), null);
  assertEquals(noticeFor({ ...quiet, workerState: error })?.text, "It broke.");
});
