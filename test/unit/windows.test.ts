// Window processors in the TopologyTestDriver against an independent model (test/helpers/window-model.ts): random
// event times with out-of-order and late records, for each window kind and each emission mode. With emit: update
// every result, in order, is the model's; with emit: close each window's final result comes exactly once; late
// records are counted; the windows store holds what the model says is not yet expired.
import test from 'ava';
import { join } from 'node:path';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { FIXTURES } from '../helpers/cli.ts';
import { prng } from '../helpers/prng.ts';
import { WindowModel, type Agg, type ModelWindow, type Result, type WindowDecl } from '../helpers/window-model.ts';

const BASE = Date.parse('2026-01-01T00:00:00Z');
const PARTITIONS = 3;
const MIN = 60_000;

interface Options {
  emit: 'update' | 'close';
  reducer?: boolean;
  /** re-key by data.customer through the repartition topic */
  rekey?: boolean;
  time?: 'event' | 'record';
  late?: 'drop' | 'dlq';
}

async function windowDriver(window: WindowDecl, o: Options): Promise<{ d: TopologyTestDriver; stage: string }> {
  const aggregation = o.reducer
    ? { module: join(FIXTURES, 'modules/window-amounts.ts') }
    : { aggregate: { count: 'count', sum: { sum: 'data.amount' }, min: { min: 'data.amount' }, max: { max: 'data.amount' } } };
  const d = await TopologyTestDriver.fromObject(
    {
      app: 'shop',
      kafka: { brokers: 'localhost:9092' },
      topics: { events: { name: 'events', partitions: PARTITIONS }, out: { name: 'window-results', partitions: PARTITIONS } },
      processors: [
        {
          name: 'per-customer',
          type: 'window',
          input: 'events',
          output: 'out',
          eventTypes: ['OrderPlaced'],
          window,
          emit: o.emit,
          ...(o.late ? { late: o.late } : {}),
          ...(o.time ? { time: o.time } : {}),
          ...(o.rekey ? { key: 'data.customer' } : {}),
          ...aggregation,
        },
      ],
    },
    FIXTURES,
  );
  return { d, stage: o.rekey ? 'per-customer-windows' : 'per-customer' };
}

interface Ev {
  key: string;
  time: number;
  amount: number;
}

/** Mostly in order, some out of order within a few minutes, some far behind (late unless grace is long). */
function randomStream(seed: number, n: number, keys: number, stepMs: number): Ev[] {
  const rand = prng(seed);
  const out: Ev[] = [];
  let t = BASE;
  for (let i = 0; i < n; i++) {
    const r = rand();
    t += Math.floor(rand() * stepMs);
    let time = t;
    if (r > 0.6 && r <= 0.9) time = t - Math.floor(rand() * 5 * MIN);
    else if (r > 0.9) time = t - 5 * MIN - Math.floor(rand() * 60 * MIN);
    out.push({ key: `c${Math.floor(rand() * keys)}`, time: Math.max(BASE, time), amount: 1 + Math.floor(rand() * 100) });
  }
  return out;
}

/** A key of each partition, for records that move stream time of every partition. */
function keyPerPartition(): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < PARTITIONS; i++) {
    const k = `flush-${i}`;
    if (!keys.some((x) => partitionForKey(x, PARTITIONS) === partitionForKey(k, PARTITIONS))) keys.push(k);
  }
  return keys;
}

let orders = 0;
async function pipe(d: TopologyTestDriver, e: Ev, rekey: boolean | undefined, recordTime?: number): Promise<void> {
  // with rekey the record key is the order; the window key is data.customer
  const id = rekey ? `order-${++orders}` : e.key;
  await d.pipeEvent(
    { eventType: 'OrderPlaced', aggregateId: id, aggregateType: 'Order', timestamp: new Date(e.time).toISOString(), data: { customer: e.key, amount: e.amount } },
    { timestamp: recordTime ?? e.time },
  );
}

const sortResults = (rs: Result[]) => [...rs].sort((a, b) => (a.key + a.start < b.key + b.start ? -1 : a.key + a.start > b.key + b.start ? 1 : 0));

const stored = (w: ModelWindow, reducer: boolean) => ({
  key: w.key,
  start: w.start,
  end: w.end,
  aggregate: reducer ? w.agg.amounts : (({ count, sum, min, max }: Agg) => ({ count, sum, min, max }))(w.agg),
});

async function runAgainstModel(t: import('ava').ExecutionContext, window: WindowDecl, o: Options, seed: number, n = 400): Promise<void> {
  const { d, stage } = await windowDriver(window, o);
  const model = new WindowModel(window, PARTITIONS, o.reducer);
  for (const e of randomStream(seed, n, 6, 2 * MIN)) {
    await pipe(d, e, o.rekey);
    model.apply(e.key, e.time, e.amount);
  }
  // a record far ahead in every partition closes (and with a long jump expires) what is left
  const last = Math.max(...randomStream(seed, n, 6, 2 * MIN).map((e) => e.time));
  for (const key of keyPerPartition()) {
    const e = { key, time: last + 24 * 60 * MIN, amount: 1 };
    await pipe(d, e, o.rekey);
    model.apply(e.key, e.time, e.amount);
  }

  const results = d.output<Result>('window-results').map((r) => r.value);
  if (o.emit === 'update') t.deepEqual(results, model.updates, 'every update, in order');
  else {
    t.deepEqual(sortResults(results), sortResults(model.closes), 'each closed window once, with its final result');
    t.is(new Set(results.map((r) => `${r.key}@${r.start}`)).size, results.length, 'no window twice');
  }
  t.true(model.late > 0, 'the stream has late records');
  t.is(d.metric(stage, 'window_records', { outcome: 'late' }), model.late, 'late records counted');

  // the store: every window the model still holds, and nothing the model does not know
  const store = [...(await d.store<ReturnType<typeof stored>>(stage, 'windows')).values()];
  const byId = (w: { key: string; start: number }) => `${w.key}@${w.start}`;
  const held = new Map(model.held().map((w) => [byId(w), stored(w, o.reducer ?? false)]));
  const all = new Map(model.windows.map((w) => [byId(w), stored(w, o.reducer ?? false)]));
  for (const [id, w] of held) t.deepEqual(store.find((s) => byId(s) === id), w, `window ${id} held`);
  for (const s of store) t.deepEqual(s, all.get(byId(s)), `window ${byId(s)} is the model's`);
  t.true(model.windows.some((w) => w.expired), 'some windows expired');
}

const tumbling: WindowDecl = { kind: 'tumbling', sizeMs: 10 * MIN, graceMs: 3 * MIN, retentionMs: 20 * MIN };
const hopping: WindowDecl = { kind: 'hopping', sizeMs: 10 * MIN, advanceMs: 3 * MIN, graceMs: 2 * MIN, retentionMs: 15 * MIN };
const sliding: WindowDecl = { kind: 'sliding', timeDifferenceMs: 5 * MIN, graceMs: 3 * MIN, retentionMs: 10 * MIN };
const session: WindowDecl = { kind: 'session', gapMs: 4 * MIN, graceMs: 2 * MIN, retentionMs: 10 * MIN };

for (const [name, w] of [
  ['tumbling', tumbling],
  ['hopping', hopping],
  ['sliding', sliding],
  ['session', session],
] as const) {
  test(`${name} windows, emit update: every result in order, late records counted, the store as the model`, async (t) => {
    await runAgainstModel(t, w, { emit: 'update' }, 11);
  });
  test(`${name} windows, emit close: each window once with its final result, late records counted, the store as the model`, async (t) => {
    await runAgainstModel(t, w, { emit: 'close' }, 23);
  });
}

test('sliding windows with a reducer module fold a new window from its records in time order', async (t) => {
  await runAgainstModel(t, sliding, { emit: 'update', reducer: true }, 37);
});

test('session windows with a reducer module merge joined sessions oldest first', async (t) => {
  await runAgainstModel(t, session, { emit: 'update', reducer: true }, 41);
});

test('windows keyed by an expression re-key through the repartition topic and equal the model per window key', async (t) => {
  await runAgainstModel(t, hopping, { emit: 'close', rekey: true }, 53);
});

test('grace 0 and no retention: a record in a closed window is late, the window is deleted when it closes', async (t) => {
  await runAgainstModel(t, { kind: 'tumbling', sizeMs: 5 * MIN, graceMs: 0 }, { emit: 'update' }, 61);
});
