/** The one sleep of the codebase: a timer that an `AbortSignal` can cut short. */

/** How `delay()` treats its signal. */
export interface DelayOptions {
  /** Ends the wait early when it aborts. */
  signal?: AbortSignal | undefined;
  /** Reject with the signal's reason on abort instead of resolving. @default false */
  rejectOnAbort?: boolean;
}

/**
 * Resolves after `ms`, always through a timer, so even 0 ms yields to the event loop (a
 * polling loop that waits 0 still lets sockets and timers run). When `signal` aborts first
 * (or already has), resolves at once, or rejects with its reason under `rejectOnAbort`.
 */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  const { signal, rejectOnAbort = false } = options;
  if (signal?.aborted) return rejectOnAbort ? Promise.reject(signal.reason) : Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", aborted);
      resolve();
    };
    const aborted = () => {
      if (!rejectOnAbort) return done();
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener("abort", aborted, { once: true });
  });
}
