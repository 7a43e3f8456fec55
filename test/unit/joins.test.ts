// Joins in the TopologyTestDriver against independent models (docs/joins.md): random orders of events and table
// changes, deletions (tombstones), out-of-order and late event times, foreign-key changes, and for the foreign-key
// join a random interleaving of the partitions of its internal topics (the driver's `interleave`), as on a broker.
import test from 'ava';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import type { TopologyInput } from '../../src/topology/schema.ts';
import { FIXTURES } from '../helpers/cli.ts';
import { prng } from '../helpers/prng.ts';

const BASE = Date.parse('2026-01-01T00:00:00Z');
const MIN = 60_000;

type Join = Record<string, unknown>;

function topology(join: Join, partitions: { left?: number; right?: number } = {}): TopologyInput {
  return {
    app: 'shop',
    kafka: { brokers: 'localhost:9092' },
    topics: {
      left: { name: 'left', partitions: partitions.left ?? 3 },
      right: { name: 'right', partitions: partitions.right ?? 3 },
      out: { name: 'joined', partitions: partitions.left ?? 3 },
    },
    processors: [{ name: 'j', type: 'join', input: 'left', right: 'right', output: 'out', ...join } as never],
  };
}

const event = (eventType: string, aggregateId: string, data: Record<string, unknown>, time = BASE) => ({
  eventType,
  aggregateId,
  aggregateType: 'Order',
  data,
  timestamp: new Date(time).toISOString(),
});

interface Out {
  key: string | null;
  value: unknown;
}

const byKey = (records: Out[]) => {
  const m = new Map<string, unknown[]>();
  for (const r of records) m.set(r.key!, [...(m.get(r.key!) ?? []), r.value]);
  return m;
};

for (const mode of ['inner', 'left'] as const) {
  for (const rekey of [false, true]) {
    test(`stream-table ${mode} join${rekey ? ' by a key expression (repartitioned)' : ''}: each event joins the row its key has when it comes, over random orders of events and row changes`, async (t) => {
      for (const seed of [1, 2, 3, 4, 5, 6]) {
        const rand = prng(seed);
        const d = await TopologyTestDriver.fromObject(topology({ kind: 'stream-table', join: mode, ...(rekey ? { key: 'data.customer' } : {}) }), FIXTURES);
        const table = new Map<string, unknown>();
        const expected: Out[] = [];
        for (let i = 0; i < 150; i++) {
          const k = `c${Math.floor(rand() * 6)}`;
          if (rand() < 0.4) {
            const row = rand() < 0.2 ? null : { name: `name-${i}` };
            await d.pipe('right', k, row);
            if (row === null) table.delete(k);
            else table.set(k, row);
          } else {
            const aggregateId = rekey ? `o${i}` : k;
            const e = await d.pipeEvent(event('OrderPlaced', aggregateId, { customer: k, n: i }), { topic: 'left' });
            const row = table.get(k);
            if (row !== undefined || mode === 'left') expected.push({ key: k, value: { key: k, left: e, right: row ?? null } });
          }
        }
        const out = d.output('out').map((r) => ({ key: r.key, value: r.value }));
        t.deepEqual(byKey(out), byKey(expected), `seed ${seed}`);
        t.is(out.length, expected.length);
        await d.close();
      }
    });
  }
}

test('stream-table join: an undecodable event and an event with no key go to the dead-letter topic, not the processor', async (t) => {
  const d = await TopologyTestDriver.fromObject(topology({ kind: 'stream-table' }), FIXTURES);
  await d.pipe('left', 'c1', '{not json', { raw: true });
  await d.pipe('left', null, event('OrderPlaced', 'c1', {}));
  await d.pipe('left', 'c1', { not: 'an event' });
  const dead = d.deadLetters('j');
  t.deepEqual(dead.map((x) => x.code), ['DESERIALIZATION_FAILED', 'KEY_MISSING', 'ENVELOPE_INVALID']);
  t.is(d.output('out').length, 0);
  await d.close();
});

/** The join row of a table-table join for a key, as docs/joins.md defines it. */
function tableRow(mode: string, key: string, l: unknown, r: unknown): unknown {
  const has = mode === 'inner' ? l !== undefined && r !== undefined : mode === 'left' ? l !== undefined : l !== undefined || r !== undefined;
  return has ? { key, left: l ?? null, right: r ?? null } : null;
}

for (const mode of ['inner', 'left', 'outer'] as const) {
  test(`table-table ${mode} join: after every change of either side the key's join row is the join of the two tables, tombstones included`, async (t) => {
    for (const seed of [11, 12, 13, 14, 15]) {
      const rand = prng(seed);
      const d = await TopologyTestDriver.fromObject(topology({ kind: 'table-table', join: mode }), FIXTURES);
      const sides = { left: new Map<string, unknown>(), right: new Map<string, unknown>() };
      for (let i = 0; i < 200; i++) {
        const k = `k${Math.floor(rand() * 5)}`;
        const side = rand() < 0.5 ? 'left' : 'right';
        const row = rand() < 0.25 ? null : { v: i };
        const mark = d.mark();
        const before = tableRow(mode, k, sides.left.get(k), sides.right.get(k));
        await d.pipe(side, k, row);
        if (row === null) sides[side].delete(k);
        else sides[side].set(k, row);
        const after = tableRow(mode, k, sides.left.get(k), sides.right.get(k));
        const sent = d.output('out', { since: mark });
        // a change sends the key's row, or its tombstone when it had a row; a key with no row before or after sends nothing
        if (before === null && after === null) t.is(sent.length, 0, `seed ${seed} step ${i}`);
        else t.deepEqual(sent.map((r) => [r.key, r.value]), [[k, after]], `seed ${seed} step ${i}`);
      }
      const latest = d.latest('out');
      for (const k of ['k0', 'k1', 'k2', 'k3', 'k4']) t.deepEqual(latest.get(k) ?? null, tableRow(mode, k, sides.left.get(k), sides.right.get(k)));
      await d.close();
    }
  });
}

interface StreamEvent {
  side: 'left' | 'right';
  key: string;
  time: number;
  n: number;
  matched: boolean;
}

for (const [mode, late] of [['inner', 'drop'], ['inner', 'dlq'], ['left', 'drop'], ['outer', 'drop']] as const) {
  test(`stream-stream ${mode} join (late: ${late}): each pair within the window is sent once${mode === 'inner' ? '' : ', each event of a side that joined nothing once its window closed'}, late records are ${late === 'drop' ? 'counted' : 'dead-lettered'}, and the buffers keep only what can still join`, async (t) => {
    const window = { beforeMs: 2 * MIN, afterMs: 10 * MIN, graceMs: 3 * MIN };
    for (const seed of [21, 22, 23, 24]) {
      const rand = prng(seed);
      const d = await TopologyTestDriver.fromObject(
        topology({ kind: 'stream-stream', join: mode, window, late, eventTypes: { left: ['OrderPlaced'], right: ['PaymentCharged'] }, select: { order: 'left.data.n', payment: 'right.data.n' } }, { left: 1, right: 1 }),
        FIXTURES,
      );
      let clock = BASE;
      let streamTime = -1;
      const kept: StreamEvent[] = [];
      const expected: Out[] = [];
      let lateCount = 0;
      for (let n = 0; n < 300; n++) {
        clock += Math.floor(rand() * MIN);
        const r = rand();
        const time = r < 0.7 ? clock : r < 0.93 ? clock - Math.floor(rand() * 4 * MIN) : clock - Math.floor(rand() * 30 * MIN);
        const e: StreamEvent = { side: rand() < 0.5 ? 'left' : 'right', key: `o${Math.floor(rand() * 4)}`, time, n, matched: false };
        await d.pipeEvent(event(e.side === 'left' ? 'OrderPlaced' : 'PaymentCharged', e.key, { n }, time), { topic: e.side });
        if (streamTime >= 0 && time < streamTime - window.graceMs) {
          lateCount++;
          continue;
        }
        streamTime = Math.max(streamTime, time);
        for (const o of kept) {
          if (o.key !== e.key || o.side === e.side) continue;
          const [l, rt] = e.side === 'left' ? [e, o] : [o, e];
          if (rt.time >= l.time - window.beforeMs && rt.time <= l.time + window.afterMs) {
            expected.push({ key: e.key, value: { order: l.n, payment: rt.n } });
            l.matched = rt.matched = true;
          }
        }
        kept.push(e);
      }
      // an event of another type is ignored
      await d.pipeEvent(event('OrderShipped', 'o1', {}, clock), { topic: 'left' });
      // the stream-time punctuation sends what the per-record sweeps left behind
      await d.advanceStreamTime(clock + 365 * 24 * 60 * MIN, 'j');
      // a side's event that joined nothing, once no record that is not late can join it any more
      const closes = (e: StreamEvent) => e.time + (e.side === 'left' ? window.afterMs : window.beforeMs) + window.graceMs < streamTime;
      const alone = (e: StreamEvent) => (e.side === 'left' ? mode !== 'inner' : mode === 'outer');
      for (const e of kept) if (!e.matched && alone(e) && closes(e)) expected.push({ key: e.key, value: e.side === 'left' ? { order: e.n } : { payment: e.n } });
      const out = d.output('out').map((x) => ({ key: x.key, value: x.value }));
      // one record's matches come in time order, the model's in arrival order: compare each key's results as sets
      const sorted = (m: Map<string, unknown[]>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, vs]) => [k, vs.map((v) => JSON.stringify(v)).sort()]));
      t.deepEqual(sorted(byKey(out)), sorted(byKey(expected)), `seed ${seed}`);
      t.is(out.length, expected.length);
      t.true(expected.length > 50);
      if (mode !== 'inner') t.true(kept.some((e) => !e.matched && alone(e) && closes(e)), 'some events joined nothing');
      t.true(lateCount > 0);
      if (late === 'drop') t.is(d.metric('j', 'join_records', { outcome: 'late' }), lateCount);
      else t.deepEqual(d.deadLetters('j').map((x) => x.code), Array(lateCount).fill('JOIN_RECORD_LATE'));
      t.is(d.metric('j', 'join_records', { outcome: 'ignored' }), 1);
      // bounded: what is buffered is what a record that is not late may still join
      const keepMs = Math.max(window.beforeMs, window.afterMs) + window.graceMs;
      const buffered = [...(await d.store('j', 'left-buffer')).keys(), ...(await d.store('j', 'right-buffer')).keys()].length;
      t.is(buffered, kept.filter((e) => e.time + keepMs >= streamTime).length);
      await d.close();
    }
  });
}

/** Random changes of orders (with customer changes and deletions) and customers, delivered in random interleavings. */
for (const mode of ['inner', 'left'] as const) {
  test(`foreign-key ${mode} join: each order's last row joins its current customer's current row, whatever the order the internal topics deliver in`, async (t) => {
    for (const seed of [31, 32, 33, 34, 35, 36, 37, 38]) {
      const rand = prng(seed);
      const d = await TopologyTestDriver.fromObject(
        topology({ kind: 'foreign-key', join: mode, foreignKey: 'customerId', select: { order: 'key', total: 'left.total', customer: 'right.name' } }, { left: 3, right: 2 }),
        FIXTURES,
        { interleave: prng(seed * 7) },
      );
      const orders = new Map<string, { customerId?: string; total: number }>();
      const customers = new Map<string, { name: string }>();
      for (let round = 0; round < 12; round++) {
        d.hold();
        for (let i = 0; i < 15; i++) {
          const r = rand();
          if (r < 0.6) {
            const o = `o${Math.floor(rand() * 8)}`;
            const row = rand() < 0.15 ? null : { ...(rand() < 0.1 ? {} : { customerId: `c${Math.floor(rand() * 4)}` }), total: round * 100 + i };
            await d.pipe('left', o, row);
            if (row === null) orders.delete(o);
            else orders.set(o, row);
          } else {
            const c = `c${Math.floor(rand() * 4)}`;
            const row = rand() < 0.2 ? null : { name: `${c}-${round}-${i}` };
            await d.pipe('right', c, row);
            if (row === null) customers.delete(c);
            else customers.set(c, row);
          }
        }
        await d.release();
        const latest = d.latest('out');
        for (let n = 0; n < 8; n++) {
          const o = `o${n}`;
          const order = orders.get(o);
          const customer = order?.customerId === undefined ? undefined : customers.get(order.customerId);
          const want = order === undefined || (customer === undefined && mode === 'inner') ? null : { order: o, total: order.total, ...(customer ? { customer: customer.name } : {}) };
          t.deepEqual(latest.get(o) ?? null, want, `seed ${seed} round ${round} ${o}`);
        }
      }
      t.true(d.metric('j', 'join_records', { outcome: 'stale' }) > 0, 'some responses came for older rows and were dropped');
      // subscriptions follow the orders: one per order with a customer
      const subs = await d.store('j-subscriptions', 'subscriptions');
      t.is(subs.size, [...orders.values()].filter((o) => o.customerId !== undefined).length);
      await d.close();
    }
  });
}

test('foreign-key join: bad rows and records on its internal topics go to the dead-letter topics with their reasons, and the join goes on', async (t) => {
  const d = await TopologyTestDriver.fromObject(
    { ...topology({ kind: 'foreign-key', join: 'left', foreignKey: 'customerId' }), processing: { retry: { attempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } } },
    FIXTURES,
  );
  await d.pipe('left', 'o1', '{cut', { raw: true });
  await d.pipe('left', null, { customerId: 'c1' });
  await d.pipe('left', 'o2', { customerId: { not: 'a key' } });
  await d.pipe('shop-j-repartition', 'c1', { op: 'subscribe', key: 'o1' });
  await d.pipe('shop-j-response', 'o1', 'not a response');
  await d.pipe('right', 'c1', '{cut', { raw: true });
  t.deepEqual(d.deadLetters('j').map((x) => x.code), ['DESERIALIZATION_FAILED', 'KEY_MISSING', 'HANDLER_FAILED', 'ENVELOPE_INVALID']);
  t.deepEqual(d.deadLetters('j-subscriptions').map((x) => x.code), ['ENVELOPE_INVALID', 'DESERIALIZATION_FAILED']);
  await d.pipe('right', 'c1', { name: 'Ann' });
  await d.pipe('left', 'o3', { customerId: 'c1' });
  t.deepEqual(d.latest('out').get('o3'), { key: 'o3', left: { customerId: 'c1' }, right: { name: 'Ann' } });
  await d.close();
});

test('stream-table join: steps run on the events only — a filter drops some, a route step copies them to its topic and lets them go on', async (t) => {
  const base = topology({
    kind: 'stream-table',
    steps: [{ filter: 'data.n != 3' }, { route: { by: 'eventType', to: { OrderPlaced: 'copies' }, continue: true } }],
  });
  const d = await TopologyTestDriver.fromObject({ ...base, topics: { ...base.topics, copies: { name: 'copies', partitions: 3 } } }, FIXTURES);
  await d.pipe('right', 'c1', { name: 'Ann' });
  for (const n of [1, 2, 3, 4]) await d.pipeEvent(event('OrderPlaced', 'c1', { n }), { topic: 'left' });
  t.deepEqual(d.output('out').map((r) => (r.value as { left: { data: { n: number } } }).left.data.n), [1, 2, 4]);
  t.deepEqual(d.output('copies').map((r) => (r.value as { data: { n: number } }).data.n), [1, 2, 4]);
  t.deepEqual(d.deadLetters('j'), []);
  await d.close();
});
