// GET /windows/<processor>/<key>: the windows of a key with time in [from, to], read from a window processor's
// committed `windows` store (filled here by the test driver), each with its result fields and whether it closed.
import test from 'ava';
import { Registry } from 'prom-client';
import { QueryApi, type QueryableProcessor, type StoreRead } from '../../src/http/query-api.ts';
import { HttpServer } from '../../src/http/server.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { MemoryCommittedStore, type CommittedStore } from '../../src/state/committed-store.ts';
import { encodeValue } from '../../src/state/value-codec.ts';
import type { TopologyInput } from '../../src/topology/schema.ts';
import { memoryLogger } from '../helpers/log.ts';

const BASE = Date.parse('2026-01-01T10:00:00Z');
const MIN = 60_000;
const iso = (t: number) => new Date(t).toISOString();

/** A window processor run by the test driver (one partition), its stores served by the query API. */
async function world(window: Record<string, unknown>, times: [string, number][]) {
  const topology = {
    app: 'shop',
    kafka: { brokers: 'localhost:9092' },
    topics: { events: { name: 'events', partitions: 1 } },
    processors: [{ name: 'orders-per-customer', type: 'window', input: 'events', window, aggregate: { orders: 'count' } }],
  } as unknown as TopologyInput;
  const d = await TopologyTestDriver.fromObject(topology, '.');
  let n = 0;
  for (const [key, time] of times) {
    await d.pipeEvent({ eventType: 'OrderPlaced', aggregateId: key, aggregateType: 'Order', aggregateVersion: ++n, data: {} }, { timestamp: time });
  }
  const spec = (await import('../../src/processors/build.ts')).buildProcessorSpecs;
  const { parseTopology } = await import('../../src/topology/load.ts');
  const [built] = await spec(parseTopology(JSON.stringify(topology), 'topology.yaml'));
  const stores = new Map<string, MemoryCommittedStore>();
  for (const name of ['windows', 'window-index']) {
    const s = new MemoryCommittedStore(name);
    await s.apply([...(await d.store('orders-per-customer', name))].map(([key, v]) => ({ key, value: encodeValue(v) })), {});
    stores.set(name, s);
  }
  const p: QueryableProcessor = {
    name: 'orders-per-customer',
    stores: [...stores.keys()],
    partitions: 1,
    aggregate: undefined,
    window: built!.window,
    taskStates: () => ({ 0: 'running' }),
    async readCommitted<T>(_p: number, s: string, fn: (c: CommittedStore) => Promise<T>): Promise<StoreRead<T>> {
      return { ok: true, value: await fn(stores.get(s)!) };
    },
  };
  const registry = new Registry();
  const http = new HttpServer({ host: '127.0.0.1', port: 0, token: undefined, registry, readiness: () => ({ ready: true, detail: {} }), log: memoryLogger() });
  new QueryApi(() => [p]).register(http);
  const port = await http.listen();
  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: r.status, body: (await r.json()) as Record<string, any> };
  };
  return { get, close: () => http.close() };
}

test('tumbling windows of a key overlapping [from, to], oldest first, closed or not; another key sharing the prefix stays out', async (t) => {
  const w = await world({ kind: 'tumbling', sizeMs: 10 * MIN, graceMs: MIN, retentionMs: 60 * MIN }, [
    ['c1', BASE + MIN],
    ['c1', BASE + 2 * MIN],
    ['c1@1', BASE + 3 * MIN],
    ['c1', BASE + 15 * MIN],
    ['c1', BASE + 25 * MIN],
  ]);
  try {
    const all = await w.get('/windows/orders-per-customer/c1');
    t.is(all.status, 200);
    t.deepEqual(all.body, {
      processor: 'orders-per-customer',
      key: 'c1',
      partition: 0,
      kind: 'tumbling',
      streamTime: iso(BASE + 25 * MIN),
      windows: [
        { start: iso(BASE), end: iso(BASE + 10 * MIN), closed: true, orders: 2 },
        { start: iso(BASE + 10 * MIN), end: iso(BASE + 20 * MIN), closed: true, orders: 1 },
        { start: iso(BASE + 20 * MIN), end: iso(BASE + 30 * MIN), closed: false, orders: 1 },
      ],
      truncated: false,
    });
    // [10:09:59.999, 10:10]: the first window ends at 10:10 (exclusive), so only its last millisecond and the second's first
    const some = await w.get(`/windows/orders-per-customer/c1?from=${encodeURIComponent(iso(BASE + 10 * MIN - 1))}&to=${BASE + 10 * MIN}`);
    t.deepEqual(some.body.windows.map((x: { start: string }) => x.start), [iso(BASE), iso(BASE + 10 * MIN)]);
    const limited = await w.get('/windows/orders-per-customer/c1?limit=2');
    t.deepEqual([limited.body.windows.length, limited.body.truncated], [2, true]);
    t.deepEqual((await w.get('/windows/orders-per-customer/c1%401')).body.windows.map((x: { orders: number }) => x.orders), [1]);
    t.deepEqual((await w.get('/windows/orders-per-customer/nobody')).body.windows, []);
    t.is((await w.get('/windows/orders-per-customer/c1?from=tomorrow')).status, 400);
    t.is((await w.get(`/windows/orders-per-customer/c1?from=${BASE + MIN}&to=${BASE}`)).status, 400);
    const unknown = await w.get('/windows/orders/c1');
    t.deepEqual([unknown.status, unknown.body.windows], [404, ['orders-per-customer']]);
  } finally {
    await w.close();
  }
});

test('session windows are found by overlap however long they are; sliding windows by their end', async (t) => {
  const s = await world({ kind: 'session', gapMs: 5 * MIN, retentionMs: 60 * MIN }, [
    ['c1', BASE],
    ['c1', BASE + 4 * MIN],
    ['c1', BASE + 8 * MIN],
    ['c1', BASE + 30 * MIN],
  ]);
  try {
    const r = await s.get(`/windows/orders-per-customer/c1?from=${BASE + 7 * MIN}&to=${BASE + 7 * MIN}`);
    t.deepEqual(r.body.windows, [{ start: iso(BASE), end: iso(BASE + 8 * MIN), closed: true, orders: 3 }]);
  } finally {
    await s.close();
  }
  const l = await world({ kind: 'sliding', timeDifferenceMs: 5 * MIN, graceMs: 10 * MIN }, [
    ['c1', BASE],
    ['c1', BASE + 4 * MIN],
    ['c1', BASE + 12 * MIN],
  ]);
  try {
    const r = await l.get(`/windows/orders-per-customer/c1?from=${BASE + 6 * MIN}&to=${BASE + 8 * MIN}`);
    // [09:55, 10:00] and [09:59, 10:04] end before 10:06; [10:07, 10:12] overlaps
    t.deepEqual(r.body.windows, [{ start: iso(BASE + 7 * MIN), end: iso(BASE + 12 * MIN), closed: false, orders: 1 }]);
  } finally {
    await l.close();
  }
});
