/**
 * The one retry loop of src/kafka/: run `fn` again while it fails with an error `retriable` accepts, pausing
 * 100 ms, 200 ms, 400 ms… up to `maxPauseMs`, until `timeoutMs` has passed or `attempts` retries were made (whichever
 * is given; both bound it when both are). The last error is thrown as it came.
 */
export interface RetryOptions {
  retriable: (e: unknown) => boolean;
  timeoutMs?: number;
  attempts?: number;
  maxPauseMs: number;
  /** before each pause: log, refresh metadata… */
  onRetry?: (e: unknown, attempt: number) => void | Promise<void>;
}

export async function retry<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const deadline = o.timeoutMs === undefined ? Infinity : Date.now() + o.timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!o.retriable(e) || Date.now() >= deadline || (o.attempts !== undefined && attempt > o.attempts)) throw e;
      await o.onRetry?.(e, attempt);
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** (attempt - 1), o.maxPauseMs)));
    }
  }
}
