// src/kafka/retry.ts: the one retry loop of the Kafka layer (topic creation, coordinator errors, restore fetches).
import test from 'ava';
import { retry } from '../../src/kafka/retry.ts';

const failing = (times: number, error: Error) => {
  let calls = 0;
  return {
    fn: async () => {
      calls++;
      if (calls <= times) throw error;
      return calls;
    },
    calls: () => calls,
  };
};
const transient = Object.assign(new Error('transient'), { retriable: true });
const retriable = (e: unknown) => (e as { retriable?: boolean }).retriable === true;

test('a retriable error is retried until the call succeeds, with onRetry before each pause', async (t) => {
  const f = failing(3, transient);
  const seen: number[] = [];
  t.is(await retry(f.fn, { retriable, attempts: 5, maxPauseMs: 1, onRetry: (_e, n) => void seen.push(n) }), 4);
  t.deepEqual(seen, [1, 2, 3]);
});

test('an error that is not retriable is thrown at once', async (t) => {
  const f = failing(1, new Error('fatal'));
  await t.throwsAsync(retry(f.fn, { retriable, attempts: 5, maxPauseMs: 1 }), { message: 'fatal' });
  t.is(f.calls(), 1);
});

test('after the last attempt, or past the deadline, the last error is thrown', async (t) => {
  const counted = failing(100, transient);
  await t.throwsAsync(retry(counted.fn, { retriable, attempts: 2, maxPauseMs: 1 }), { message: 'transient' });
  t.is(counted.calls(), 3, 'the first call and two retries');
  const timed = failing(1_000, transient);
  await t.throwsAsync(retry(timed.fn, { retriable, timeoutMs: 50, maxPauseMs: 10 }), { message: 'transient' });
  t.true(timed.calls() < 1_000, 'the deadline ended it');
});
