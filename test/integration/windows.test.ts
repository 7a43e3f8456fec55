// Window processors on the real broker, declared in YAML: tumbling windows emitted once on close and session windows
// emitted on every update (late records dead-lettered), over random event times with out-of-order and late records.
// Halfway, the instance stops and another starts on an empty state directory: its windowed stores are restored from
// their changelogs, so the results equal the model's across the restart — each closed window exactly once, every
// update in order per partition — and the query API answers a key's windows from the restored store. A third
// processor re-keys by region through its repartition topic; its hours, closed by a later record, are the model's too.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from '../../src/app/app.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { internalTopics } from '../../src/topology/names.ts';
import { untilRunning } from '../helpers/app-ready.ts';
import { BROKERS, deleteTopics, kafka, readAll, unique, withAdmin } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { prng } from '../helpers/prng.ts';
import { waitForConsumed } from '../helpers/users-app.ts';
import { WindowModel, type Result } from '../helpers/window-model.ts';

const PARTITIONS = 3;
const MIN = 60_000;
const BASE = Date.parse('2026-03-01T08:00:00Z');

const topologyYaml = (app: string) => `
app: ${app}
kafka: { brokers: "${BROKERS.join(',')}" }
processing: { commitIntervalMs: 100, sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 }
http: { host: 127.0.0.1, port: 0 }
topics:
  events: { name: ${app}-customer-events, partitions: ${PARTITIONS} }
  hourly: { name: ${app}-orders-hourly, partitions: ${PARTITIONS} }
  sessions: { name: ${app}-shopping-sessions, partitions: ${PARTITIONS} }
  regions: { name: ${app}-orders-per-region, partitions: ${PARTITIONS} }
processors:
  - name: orders-hourly
    type: window
    input: events
    output: hourly
    eventTypes: [OrderPlaced]
    window: { kind: tumbling, sizeMs: 3600000, graceMs: 600000, retentionMs: 7200000 }
    emit: close
    aggregate:
      count: count
      sum: { sum: data.amount }
      min: { min: data.amount }
      max: { max: data.amount }
  - name: shopping-sessions
    type: window
    input: events
    output: sessions
    eventTypes: [OrderPlaced]
    window: { kind: session, gapMs: 1200000, graceMs: 300000, retentionMs: 172800000 }
    late: dlq
    aggregate:
      count: count
      sum: { sum: data.amount }
      min: { min: data.amount }
      max: { max: data.amount }
  - name: orders-per-region
    type: window
    input: events
    output: regions
    eventTypes: [OrderPlaced]
    key: data.region
    window: { kind: tumbling, sizeMs: 3600000, graceMs: 259200000, retentionMs: 259200000 }
    emit: close
    aggregate:
      count: count
      sum: { sum: data.amount }
      min: { min: data.amount }
      max: { max: data.amount }
`;

interface Ev {
  customer: string;
  time: number;
  amount: number;
  region?: string;
}

/** Customers are in regions; re-keyed by region, the windows of a region gather orders of several input partitions. */
const regionOf = (e: Ev) => e.region ?? `region-${Number(e.customer.replace(/\D/g, '') || 0) % 4}`;

function randomStream(seed: number, n: number, customers: number): Ev[] {
  const rand = prng(seed);
  const out: Ev[] = [];
  let t = BASE;
  for (let i = 0; i < n; i++) {
    const r = rand();
    t += Math.floor(rand() * 6 * MIN);
    let time = t;
    if (r > 0.6 && r <= 0.9) time = t - Math.floor(rand() * 8 * MIN);
    else if (r > 0.9) time = t - 15 * MIN - Math.floor(rand() * 120 * MIN);
    out.push({ customer: `cust-${Math.floor(rand() * customers)}`, time, amount: 1 + Math.floor(rand() * 500) });
  }
  return out;
}

async function produce(topic: string, events: Ev[], first: number): Promise<void> {
  const producer = kafka('window-test-producer').producer();
  await producer.connect();
  try {
    await producer.send({
      topic,
      messages: events.map((e, i) => ({
        key: e.customer,
        partition: partitionForKey(e.customer, PARTITIONS),
        timestamp: String(e.time),
        value: JSON.stringify({
          eventId: `evt-${first + i}`,
          eventType: 'OrderPlaced',
          eventVersion: 1,
          aggregateType: 'Customer',
          aggregateId: e.customer,
          aggregateVersion: first + i + 1,
          timestamp: new Date(e.time).toISOString(),
          data: { amount: e.amount, region: regionOf(e) },
        }),
      })),
    });
  } finally {
    await producer.disconnect();
  }
}

/** Results of one partition in order, as the model's (whose list is in input order over all partitions). */
const byPartition = (results: Result[]) => {
  const out: Record<number, Result[]> = {};
  for (const r of results) (out[partitionForKey(r.key, PARTITIONS)] ??= []).push(r);
  return out;
};
const sorted = (rs: Result[]) => [...rs].sort((a, b) => (a.key + a.start < b.key + b.start ? -1 : 1));

test('tumbling (emit close), session (emit update, late: dlq) and re-keyed windows from YAML equal the model across a restart that restores the windowed stores', async (t) => {
  const app = unique('windows');
  const dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, topologyYaml(app));
  const loaded = loadTopology(file);
  const topic = (alias: string) => loaded.topology.topics[alias]!.name;
  const apps: App[] = [];
  try {
    const events = randomStream(2026, 600, 10);
    const hourly = new WindowModel({ kind: 'tumbling', sizeMs: 60 * MIN, graceMs: 10 * MIN, retentionMs: 120 * MIN }, PARTITIONS);
    const sessions = new WindowModel({ kind: 'session', gapMs: 20 * MIN, graceMs: 5 * MIN, retentionMs: 48 * 60 * MIN }, PARTITIONS);
    for (const e of events) {
      hourly.apply(e.customer, e.time, e.amount);
      sessions.apply(e.customer, e.time, e.amount);
    }
    // one record a day later in each partition: every window of the stream closes
    const flush: Ev[] = [];
    for (let i = 0; flush.length < PARTITIONS; i++) {
      const c = `flush-${i}`;
      if (!flush.some((f) => partitionForKey(f.customer, PARTITIONS) === partitionForKey(c, PARTITIONS))) flush.push({ customer: c, time: events.at(-1)!.time + 24 * 60 * MIN, amount: 1 });
    }
    for (const e of flush) {
      hourly.apply(e.customer, e.time, e.amount);
      sessions.apply(e.customer, e.time, e.amount);
    }

    const start = async (name: string) => {
      const a = new App(loaded, { log: memoryLogger(), stateDir: join(dir, name), httpPort: 0 });
      apps.push(a);
      await a.start();
      await untilRunning(a, PARTITIONS);
      return a;
    };
    const caughtUp = async () => {
      await waitForConsumed(`${app}-orders-hourly`, topic('events'));
      await waitForConsumed(`${app}-shopping-sessions`, topic('events'));
      await waitForConsumed(`${app}-orders-per-region`, topic('events'));
      await waitForConsumed(`${app}-orders-per-region-windows`, `${app}-orders-per-region-repartition`);
    };

    const a = await start('a');
    await produce(topic('events'), events.slice(0, 300), 0);
    await caughtUp();
    await a.stop();
    apps.splice(apps.indexOf(a), 1);

    // a new instance on an empty state directory: the windows, their index and stream time come from the changelogs
    const b = await start('b');
    await produce(topic('events'), [...events.slice(300), ...flush], 300);
    await caughtUp();
    // re-keyed by region, records of the three input partitions interleave in the repartition topic as the tasks run:
    // with a grace period longer than the stream none is late whatever the order, so the windows are the model's
    const regions = new WindowModel({ kind: 'tumbling', sizeMs: 60 * MIN, graceMs: 72 * 60 * MIN, retentionMs: 72 * 60 * MIN }, PARTITIONS);
    for (const e of [...events, ...flush]) regions.apply(regionOf(e), e.time, e.amount);

    const hourlyOut = (await readAll([topic('hourly')])).map((r) => JSON.parse(String(r.value)) as Result);
    t.deepEqual(sorted(hourlyOut), sorted(hourly.closes), 'each hour of each customer once, with its final counts');
    t.true(hourly.late > 0 && hourly.closes.length > 100, `${hourly.closes.length} windows, ${hourly.late} late records`);

    const sessionOut = (await readAll([topic('sessions')])).map((r) => JSON.parse(String(r.value)) as Result);
    t.deepEqual(byPartition(sessionOut), byPartition(sessions.updates), 'every session update, in order per partition');
    const dead = await readAll([`${app}-shopping-sessions-dlq`]);
    t.is(dead.length, sessions.late, 'late records dead-lettered');
    t.true(sessions.late > 0);
    t.true(dead.every((r) => r.headers['foldstream.error.code'] === 'WINDOW_RECORD_LATE'));

    // the query API of the restored instance: a customer's sessions, as the model holds them
    const customer = events[0]!.customer;
    const r = await fetch(`http://127.0.0.1:${b.httpPort}/windows/shopping-sessions/${customer}`);
    const body = (await r.json()) as { windows: { start: string; end: string; count: number; sum: number }[] };
    t.is(r.status, 200);
    t.deepEqual(
      body.windows.map((w) => [w.start, w.end, w.count, w.sum]),
      sessions
        .held()
        .filter((w) => w.key === customer)
        .sort((x, y) => x.start - y.start)
        .map((w) => [new Date(w.start).toISOString(), new Date(w.end).toISOString(), w.agg.count, w.agg.sum]),
    );
    t.true(body.windows.length > 1);

    // the windowed stores' changelogs are compacted topics like every store's
    const changelogs = internalTopics(loaded.topology).filter((x) => x.purpose === 'changelog');
    t.deepEqual(changelogs.map((x) => x.store).sort(), ['window-index', 'window-index', 'window-index', 'windows', 'windows', 'windows']);
    const configs = await withAdmin((admin) =>
      admin.describeConfigs({ includeSynonyms: false, resources: changelogs.map((x) => ({ type: 2, name: x.name, configNames: ['cleanup.policy'] })) }),
    );
    for (const res of configs.resources) t.is(res.configEntries[0]?.configValue, 'compact', res.resourceName);

    // a record four days later in each window partition of the region stage (produced once everything before it was
    // windowed, so nothing is late): every region's hours close, each once
    const closeRegions: Ev[] = [];
    for (let i = 0; closeRegions.length < PARTITIONS; i++) {
      const region = `late-region-${i}`;
      if (!closeRegions.some((f) => partitionForKey(f.region!, PARTITIONS) === partitionForKey(region, PARTITIONS))) {
        closeRegions.push({ customer: 'cust-0', region, time: events.at(-1)!.time + 5 * 24 * 60 * MIN, amount: 1 });
      }
    }
    for (const e of closeRegions) regions.apply(regionOf(e), e.time, e.amount);
    await produce(topic('events'), closeRegions, 700);
    await caughtUp();
    const regionOut = (await readAll([topic('regions')])).map((r) => JSON.parse(String(r.value)) as Result);
    t.true(regions.closes.length > 100 && regions.late === 0, `${regions.closes.length} region hours`);
    t.deepEqual(sorted(regionOut), sorted(regions.closes), 'each hour of each region once, with its final counts');
  } finally {
    for (const a of apps) await a.stop();
    await deleteTopics([...Object.values(loaded.topology.topics).map((x) => x.name), ...internalTopics(loaded.topology).map((x) => x.name)]);
    rmSync(dir, { recursive: true, force: true });
  }
});
