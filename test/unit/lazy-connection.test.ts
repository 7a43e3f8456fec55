// How the Kafka clients connect (src/kafka/lazy-connection.ts): once for all callers, again after a failed attempt
// (a broker that was down at the first call must not leave the client failing for ever), never after close.
import test from 'ava';
import { LazyConnection } from '../../src/kafka/lazy-connection.ts';

function client(failures: number) {
  const calls = { connect: 0, disconnect: 0 };
  const c = new LazyConnection(
    'test client',
    async () => {
      calls.connect++;
      await new Promise((r) => setTimeout(r, 5));
      if (calls.connect <= failures) throw new Error(`broker down (attempt ${calls.connect})`);
    },
    async () => void calls.disconnect++,
  );
  return { c, calls };
}

test('callers at the same time share one connect', async (t) => {
  const { c, calls } = client(0);
  await Promise.all([c.ensure(), c.ensure(), c.ensure()]);
  await c.ensure();
  t.is(calls.connect, 1);
});

test('a failed connect is tried again by the next call, not kept as the connection', async (t) => {
  const { c, calls } = client(1);
  const [a, b] = await Promise.allSettled([c.ensure(), c.ensure()]);
  t.is(a.status, 'rejected', 'both callers of the failed attempt see its error');
  t.is(b.status, 'rejected');
  await c.ensure();
  t.is(calls.connect, 2);
});

test('after close a call fails instead of connecting again; close disconnects only what was connected', async (t) => {
  const never = client(0);
  await never.c.close();
  t.is(never.calls.disconnect, 0);
  const { c, calls } = client(0);
  await c.ensure();
  await c.close();
  t.is(calls.disconnect, 1);
  await t.throwsAsync(c.ensure(), { message: 'test client is closed' });
  t.is(calls.connect, 1);
});
