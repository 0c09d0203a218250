import { assertEquals, assertRejects } from "../tests/_assert.ts";
import { delay } from "./delay.ts";

Deno.test("delay(0) yields to the event loop; an aborted signal ends the wait at once", async () => {
  let timerRan = false;
  setTimeout(() => timerRan = true, 0);
  await delay(0);
  assertEquals(timerRan, true, "a timer set before delay(0) ran first");
  await delay(60_000, { signal: AbortSignal.abort() });
});

Deno.test("delay() ends early when its signal aborts: resolving, or rejecting with the reason", async () => {
  const resolving = new AbortController();
  const waited = delay(60_000, { signal: resolving.signal });
  resolving.abort();
  assertEquals(await waited, undefined);

  const rejecting = new AbortController();
  const rejected = delay(60_000, { signal: rejecting.signal, rejectOnAbort: true });
  rejecting.abort(new Error("Stopped by the visitor"));
  await assertRejects(() => rejected, "Stopped by the visitor");
  await assertRejects(
    () => delay(10, { signal: AbortSignal.abort(new Error("Already")), rejectOnAbort: true }),
    "Already",
  );
});
