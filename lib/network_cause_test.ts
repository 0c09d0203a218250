import { assertEquals } from "../tests/_assert.ts";
import { networkCause } from "./network_cause.ts";

Deno.test("networkCause() finds 'connection refused' inside fetch's cause chain", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const error = await fetch(`http://127.0.0.1:${port}/health`).catch((e) => e);
  assertEquals(networkCause(error), "connection refused");
  // Wrapped again, as the OpenAI SDK does ("Connection error.").
  assertEquals(
    networkCause(new Error("Connection error.", { cause: error })),
    "connection refused",
  );
});

Deno.test("networkCause() names timeouts and falls back to the innermost message", () => {
  assertEquals(networkCause(new DOMException("Signal timed out.", "TimeoutError")), "timed out");
  assertEquals(
    networkCause(new TypeError("fetch failed", { cause: new Error("something odd") })),
    "something odd",
  );
  assertEquals(networkCause("plain"), "plain");
});
