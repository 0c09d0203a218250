import { ErrorReply } from "@redis/client";
import { assert, assertEquals } from "../../../tests/_assert.ts";
import { storeFailure } from "../errors.ts";
import { isUnavailable } from "./redis_connection.ts";
import { StoreUnavailableError } from "./store_unavailable_error.ts";

Deno.test("storeFailure() answers a StoreUnavailableError with 503 store_unavailable and Retry-After", () => {
  const refused = storeFailure(new StoreUnavailableError("Redis at 127.0.0.1:1 is unavailable"));
  assert(refused, "mapped");
  assertEquals([refused.status, refused.code, refused.retryable], [503, "store_unavailable", true]);
  assertEquals(refused.retryAfterSeconds, 5);
  assertEquals(refused.toResponse().headers.get("retry-after"), "5");
});

Deno.test("isUnavailable() tells Redis's state from a bad command", () => {
  assertEquals(isUnavailable(new Error("Socket closed unexpectedly")), true);
  assertEquals(
    isUnavailable(new ErrorReply("LOADING Redis is loading the dataset in memory")),
    true,
  );
  assertEquals(isUnavailable(new ErrorReply("OOM command not allowed")), true);
  assertEquals(isUnavailable(new ErrorReply("MISCONF Errors writing to the AOF file")), true);
  assertEquals(isUnavailable(new ErrorReply("WRONGTYPE Operation against a key")), false);
  assertEquals(isUnavailable(new ErrorReply("ERR syntax error")), false);
  assertEquals(isUnavailable("not an error"), false);
});
