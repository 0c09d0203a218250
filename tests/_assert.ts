/** The assertions the tests use, on top of `node:assert` (no JSR here). */
import nodeAssert from "node:assert/strict";

/** Asserts `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Asserts that `fn` rejects, optionally with an error whose message includes `includes`. */
export async function assertRejects(fn: () => Promise<unknown>, includes?: string): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    if (includes && !(error as Error).message.includes(includes)) {
      throw new Error(
        `Expected an error including "${includes}", got "${(error as Error).message}"`,
      );
    }
    return error as Error;
  }
  throw new Error("Expected the function to reject");
}

/** Asserts that `fn` throws synchronously. */
export function assertThrows(fn: () => unknown, includes?: string): Error {
  try {
    fn();
  } catch (error) {
    if (includes && !(error as Error).message.includes(includes)) {
      throw new Error(
        `Expected an error including "${includes}", got "${(error as Error).message}"`,
      );
    }
    return error as Error;
  }
  throw new Error("Expected the function to throw");
}
