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
    : { aggregate: { count: 'count' as const, sum: { sum: 'data.amount' }, min: { min: 'data.amount' }, max: { max: 'data.amount' } } };
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
function randomStream(seed: number, n: number, keys: number, stepMs: number, keyOf = (i: number) => `c${i}`): Ev[] {
  const rand = prng(seed);
  const out: Ev[] = [];
  let t = BASE;
  for (let i = 0; i < n; i++) {
    const r = rand();
    t += Math.floor(rand() * stepMs);
    let time = t;
    if (r > 0.6 && r <= 0.9) time = t - Math.floor(rand() * 5 * MIN);
    else if (r > 0.9) time = t - 5 * MIN - Math.floor(rand() * 60 * MIN);
    out.push({ key: keyOf(Math.floor(rand() * keys)), time: Math.max(BASE, time), amount: 1 + Math.floor(rand() * 100) });
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

async function runAgainstModel(t: import('ava').ExecutionContext, window: WindowDecl, o: Options, seed: number, n = 400, keyOf?: (i: number) => string): Promise<void> {
  const { d, stage } = await windowDriver(window, o);
  const model = new WindowModel(window, PARTITIONS, o.reducer);
  const events = randomStream(seed, n, 6, 2 * MIN, keyOf);
  for (const e of events) {
    await pipe(d, e, o.rekey);
    model.apply(e.key, e.time, e.amount);
  }
  // a record far ahead in every partition closes (and with a long jump expires) what is left
  const last = Math.max(...events.map((e) => e.time));
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

// a key's windows are `<key>@<15 digits of time>`: keys that start with another key, '@' and digits of the stream's
// times sort among that key's windows (k@001767226@… lies between k@001767226000000 and k@001767226999999) and must
// stay out of its scans
// (in k's partition: each task has its own stores)
const inPartitionOfK = (stem: string, n: number) =>
  Array.from({ length: 200 }, (_, i) => `${stem}${String(i).padStart(2, '0')}`)
    .filter((x) => partitionForKey(x, PARTITIONS) === partitionForKey('k', PARTITIONS))
    .slice(0, n);
const PREFIX_KEYS = ['k', ...inPartitionOfK('k@0017672260', 2), ...inPartitionOfK('k@0017672300000', 2), 'kk'];
const prefixKeys = (i: number) => PREFIX_KEYS[i]!;
test('keys that start with another key and @ keep their own sessions', async (t) => {
  await runAgainstModel(t, session, { emit: 'update' }, 71, 400, prefixKeys);
});
test('keys that start with another key and @ keep their own sliding windows and records', async (t) => {
  await runAgainstModel(t, sliding, { emit: 'update' }, 73, 400, prefixKeys);
});

test('grace 0 and no retention: a record in a closed window is late, the window is deleted when it closes', async (t) => {
  await runAgainstModel(t, { kind: 'tumbling', sizeMs: 5 * MIN, graceMs: 0 }, { emit: 'update' }, 61);
});

test('windowed stores stay bounded over a long stream of stream time: expired windows, their index entries and points are deleted', async (t) => {
  for (const window of [
    { kind: 'tumbling', sizeMs: 10 * MIN, graceMs: 2 * MIN, retentionMs: 20 * MIN },
    { kind: 'sliding', timeDifferenceMs: 10 * MIN, graceMs: 2 * MIN, retentionMs: 20 * MIN },
  ] as WindowDecl[]) {
    const { d, stage } = await windowDriver(window, { emit: 'close' });
    const keys = 20;
    let largest = { windows: 0, index: 0, points: 0 };
    const events = randomStream(97, 2500, keys, 2 * MIN);
    for (const [i, e] of events.entries()) {
      await pipe(d, e, false);
      if (i % 250 === 249) {
        const size = async (store: string) => (await d.store(stage, store)).size;
        const now = { windows: await size('windows'), index: await size('window-index'), points: window.kind === 'sliding' ? await size('window-points') : 0 };
        largest = { windows: Math.max(largest.windows, now.windows), index: Math.max(largest.index, now.index), points: Math.max(largest.points, now.points) };
      }
    }
    // stream time moved ~2500 minutes; a key keeps what began in the last (size + retention + grace) of it: a few
    // windows (sliding: one per record in it), never the ~1250 minutes' worth it has seen
    const span = events.at(-1)!.time - events[0]!.time;
    t.true(span > 2000 * MIN, `the stream spans ${span / MIN} minutes`);
    const perKey = window.kind === 'sliding' ? 20 : 4; // records (sliding) or windows a key has in 32 minutes
    t.true(largest.windows <= keys * perKey, `${window.kind}: at most ${keys * perKey} windows held, saw ${largest.windows}`);
    t.true(largest.index <= 2 * keys * perKey + 2 * PARTITIONS + keys * perKey, `${window.kind}: index bounded, saw ${largest.index}`);
    t.true(largest.points <= keys * perKey, `${window.kind}: points bounded, saw ${largest.points}`);
    t.true(d.metric(stage, 'windows', { event: 'expired' }) > keys * 10, 'windows expired');
  }
});

test('late: dlq sends a late record to the dead-letter topic as WINDOW_RECORD_LATE; late: drop counts it', async (t) => {
  for (const late of ['dlq', 'drop'] as const) {
    const { d, stage } = await windowDriver(tumbling, { emit: 'update', late });
    await pipe(d, { key: 'c1', time: BASE + 30 * MIN, amount: 5 }, false);
    // window [10:00, 10:10) closed at 10:13 (graceMs 3 min); stream time is 10:30
    await pipe(d, { key: 'c1', time: BASE + 5 * MIN, amount: 7 }, false);
    // within grace of its window [10:20, 10:30): accepted
    await pipe(d, { key: 'c1', time: BASE + 28 * MIN, amount: 1 }, false);
    const dead = d.deadLetters(stage);
    if (late === 'dlq') {
      t.deepEqual(dead.map((x) => x.code), ['WINDOW_RECORD_LATE']);
      t.regex(dead[0]!.message, /more than graceMs \(180000\) behind the stream time/);
      t.is(d.metric(stage, 'window_records', { outcome: 'late' }), 0);
    } else {
      t.deepEqual(dead, []);
      t.is(d.metric(stage, 'window_records', { outcome: 'late' }), 1);
    }
    t.deepEqual(
      d.output<Result>('window-results').map((r) => [r.value.start, r.value.count, r.value.sum]),
      [
        [new Date(BASE + 30 * MIN).toISOString(), 1, 5],
        [new Date(BASE + 20 * MIN).toISOString(), 1, 1],
      ],
    );
  }
});

test('time: record windows by the Kafka record timestamp, not the envelope timestamp', async (t) => {
  const { d, stage } = await windowDriver(tumbling, { emit: 'update', time: 'record', rekey: true });
  // envelope times say 10:00 and 10:01, record times say 10:00 and 11:00: with time record they are in two windows
  await pipe(d, { key: 'c1', time: BASE, amount: 1 }, true, BASE);
  // the record comes when it is dated: the repartition record's time is held to maxClockSkewMs past the wall clock
  await d.advanceWallClock(60 * MIN);
  await pipe(d, { key: 'c1', time: BASE + MIN, amount: 2 }, true, BASE + 60 * MIN);
  t.deepEqual(
    d.output<Result>('window-results').map((r) => [r.value.start, r.value.sum]),
    [
      [new Date(BASE).toISOString(), 1],
      [new Date(BASE + 60 * MIN).toISOString(), 2],
    ],
  );
  // and by record time the first window (ended 10:10, retentionMs 20 min) expired when the second record came at 11:00
  t.deepEqual([...(await d.store<{ start: number }>(stage, 'windows')).values()].map((w) => w.start), [BASE + 60 * MIN]);
});

test('events of other types are not windowed and are counted as ignored', async (t) => {
  const { d, stage } = await windowDriver(tumbling, { emit: 'update' });
  await d.pipeEvent({ eventType: 'OrderCancelled', aggregateId: 'c1', aggregateType: 'Order', data: {} }, { timestamp: BASE });
  t.deepEqual(d.output('window-results'), []);
  t.is(d.metric(stage, 'window_records', { outcome: 'ignored' }), 1);
});

test('an envelope whose timestamp is not a time is dead-lettered as ENVELOPE_INVALID', async (t) => {
  const { d, stage } = await windowDriver(tumbling, { emit: 'update' });
  await d.pipe('events', 'c1', { eventId: 'e1', eventType: 'OrderPlaced', eventVersion: 1, aggregateType: 'Order', aggregateId: 'c1', aggregateVersion: 1, timestamp: 'yesterday', data: { amount: 1 } });
  t.deepEqual(d.deadLetters(stage).map((x) => x.code), ['ENVELOPE_INVALID']);
  t.regex(d.deadLetters(stage)[0]!.message, /"yesterday" is not a time/);
});

test('the stream-time punctuation closes what one record\'s chunk leaves: 120 windows closing at once all come out', async (t) => {
  const { d, stage } = await windowDriver({ kind: 'tumbling', sizeMs: 10 * MIN, graceMs: 0, retentionMs: 60 * MIN }, { emit: 'close' });
  for (let i = 0; i < 120; i++) await pipe(d, { key: `c${i}`, time: BASE + MIN, amount: 1 }, false);
  t.deepEqual(d.output('window-results'), []);
  // one record per partition an hour later: each closes 16 windows itself, its punctuation the ~24 others
  for (const key of keyPerPartition()) await pipe(d, { key, time: BASE + 61 * MIN, amount: 1 }, false);
  const results = d.output<Result>('window-results').map((r) => r.value);
  t.is(results.length, 120);
  t.deepEqual(new Set(results.map((r) => r.key)).size, 120);
  t.is(d.metric(stage, 'windows', { event: 'closed' }), 120);
});

test('windows over a projection\'s view topic (inputFormat view): each view change counts at its record time', async (t) => {
  const topology = (inputFormat: 'view' | 'envelope') => ({
    app: 'shop',
    kafka: { brokers: 'localhost:9092' },
    topics: { events: { name: 'events', partitions: 1 }, views: { name: 'carts', partitions: 1 }, out: { name: 'cart-changes', partitions: 1 } },
    processors: [
      { name: 'carts', type: 'projection' as const, input: 'events', output: 'views', on: { ItemAdded: { increment: { total: 'data.price' } }, CartEmptied: { delete: true } } },
      { name: 'cart-changes', type: 'window' as const, input: 'views', inputFormat, output: 'out', window: { kind: 'tumbling' as const, sizeMs: 10 * MIN }, aggregate: { changes: 'count' as const, deletes: { sum: "eventType = 'ViewDeleted' ? 1 : 0" }, largest: { max: 'data.total' } } },
    ],
  });
  const d = await TopologyTestDriver.fromObject(topology('view'), FIXTURES);
  const add = (time: number, price: number) => d.pipeEvent({ eventType: 'ItemAdded', aggregateId: 'cart-1', aggregateType: 'Cart', data: { price } }, { topic: 'events', timestamp: time });
  await add(BASE, 5);
  await add(BASE + MIN, 7);
  await d.pipeEvent({ eventType: 'CartEmptied', aggregateId: 'cart-1', aggregateType: 'Cart' }, { topic: 'events', timestamp: BASE + 2 * MIN });
  // the event comes when it is dated: the view record's time is held to maxClockSkewMs past the wall clock
  await d.advanceWallClock(12 * MIN);
  await add(BASE + 12 * MIN, 3);
  t.deepEqual(
    d.output<Result & { changes: number; deletes: number; largest: number | null }>('cart-changes').map((r) => [r.key, r.value.start, r.value.changes, r.value.deletes, r.value.largest]),
    [
      ['cart-1', new Date(BASE).toISOString(), 1, 0, 5],
      ['cart-1', new Date(BASE).toISOString(), 2, 0, 12],
      ['cart-1', new Date(BASE).toISOString(), 3, 1, 12],
      ['cart-1', new Date(BASE + 10 * MIN).toISOString(), 1, 0, 3],
    ],
  );
  // reading the view topic as envelopes is a mistake validation names
  const e = await t.throwsAsync(TopologyTestDriver.fromObject(topology('envelope'), FIXTURES));
  t.regex(String((e as { problems?: { message: string }[] })?.problems?.map((p) => p.message)), /topic "views" is the view topic of projection "carts", which holds views, not events/);
});
