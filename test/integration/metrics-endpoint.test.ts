// GET /metrics of a `foldstream run` process (a separate OS process, scraped over HTTP as Prometheus does) after a
// small counting workload: the runtime metrics of docs/metrics.md hold what the instance did — exact where the
// workload makes it exact (records in and out, transactions against the changelog's position markers, restored
// records against the changelog) — and Node's default metrics are served. A held restore (test/fixtures/faults/
// hold-restore.ts) shows /readyz 503 and the restore gauges while tasks restore; a second instance joining shows
// that a task's lag and restore series leave the instance that gave the task away.
import test, { type ExecutionContext } from 'ava';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanUpAfter, countingApp, produceCounting, waitForCaughtUp, type CountingApp } from '../helpers/counting-app.ts';
import { endOffsets, readAll } from '../helpers/kafka.ts';
import { Instance, waitFor } from '../helpers/processes.ts';

const HOLD_RESTORE = fileURLToPath(new URL('../fixtures/faults/hold-restore.ts', import.meta.url));
const KEYS = 97;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Scrape {
  samples: Sample[];
  /** metric family → type, from the `# TYPE` lines */
  types: Map<string, string>;
}

/** The Prometheus text format, simply: `# TYPE name type` lines and `name{a="b",...} value` samples. */
function parseMetrics(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return { samples, types };
}

/** Samples of a metric whose labels include `labels`. */
function series(s: Scrape, name: string, labels: Record<string, string> = {}): Sample[] {
  return s.samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
}

/** Sum over the matching series; 0 when there is none (a labelled counter never incremented has no series). */
function value(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  return series(s, name, labels).reduce((sum, x) => sum + x.value, 0);
}

/** Value per partition label of a per-partition gauge. */
function byPartition(s: Scrape, name: string, labels: Record<string, string> = {}): Record<string, number> {
  return Object.fromEntries(series(s, name, labels).map((x) => [x.labels.partition!, x.value]).sort(([a], [b]) => Number(a) - Number(b)));
}

async function scrape(i: Instance): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${i.httpPort}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  if (!res.headers.get('content-type')?.startsWith('text/plain')) throw new Error(`/metrics content-type ${res.headers.get('content-type')}`);
  return parseMetrics(await res.text());
}

/**
 * Scrapes until `until` holds (the metrics of a commit are updated just after the group offsets show it), or 30 s
 * passed: returns the last scrape either way, for the assertions to say what differs.
 */
async function settle(i: Instance, until: (s: Scrape) => boolean): Promise<Scrape> {
  let last = await scrape(i);
  for (const deadline = Date.now() + 30_000; !until(last) && Date.now() < deadline; last = await scrape(i)) await new Promise((r) => setTimeout(r, 200));
  return last;
}

/** Every partition of `partitions` has a series of `name` (and no other partition has one), all 0. */
function allZero(s: Scrape, name: string, labels: Record<string, string>, partitions: number[]): boolean {
  return JSON.stringify(byPartition(s, name, labels)) === JSON.stringify(partitionsOf(partitions));
}

function partitionsOf(i: number[]): Record<string, number> {
  return Object.fromEntries(i.map((p) => [String(p), 0]));
}

function tasksOf(body: Record<string, unknown> | undefined): number[] {
  const processors = (body?.processors ?? {}) as Record<string, { tasks: Record<string, string> }>;
  return Object.keys(processors.counter?.tasks ?? {})
    .map(Number)
    .sort((a, b) => a - b);
}

/** Changelog records as a restore reads them (read_committed: no control records), and how many are position markers (one per committed transaction). */
async function changelogRecords(c: CountingApp): Promise<{ records: number; markers: number }> {
  const records = await readAll([c.changelog]);
  return { records: records.length, markers: records.filter((r) => r.key?.startsWith('\u0000')).length };
}

const all = (c: CountingApp) => Array.from({ length: c.partitions }, (_, p) => p);

async function everyPartitionHasInput(t: ExecutionContext, c: CountingApp): Promise<void> {
  const ends = await endOffsets(c.input, 'read_committed');
  t.deepEqual([...ends].filter(([, e]) => e === 0n).map(([p]) => p), [], 'the workload puts records in every input partition');
}

test('GET /metrics of a running instance: records, transactions, latencies, lag, restore, rebalances, tasks and Node metrics as they happened; /readyz 503 while restoring', async (t) => {
  const c = await countingApp({ partitions: 4 });
  const pl = { processor: 'counter' };
  const instances = cleanUpAfter(t, c);

  // 1. A fresh instance counts N records.
  const stateDir = c.stateDir('s');
  const a = new Instance(c.file, { stateDir, name: 'a' });
  instances.push(a);
  await a.waitReady();
  const N = 2000;
  await produceCounting(c.input, N, KEYS);
  await everyPartitionHasInput(t, c);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  let m = await settle(a, (s) => value(s, 'foldstream_records_produced_total', { ...pl, topic: c.output }) >= N && allZero(s, 'foldstream_consumer_lag', pl, all(c)));
  const changelog = await changelogRecords(c);

  t.is(m.types.get('foldstream_records_consumed_total'), 'counter');
  t.is(m.types.get('foldstream_processing_latency_seconds'), 'histogram');
  t.is(m.types.get('foldstream_consumer_lag'), 'gauge');
  t.is(value(m, 'foldstream_records_consumed_total', { ...pl, topic: c.input }), N, 'records consumed: what was sent');
  t.is(value(m, 'foldstream_record_outcomes_total', { ...pl, outcome: 'processed' }), N);
  t.is(value(m, 'foldstream_records_produced_total', { ...pl, topic: c.output }), N, 'one output per input record');
  t.is(value(m, 'foldstream_records_produced_total', { ...pl, topic: c.changelog }), changelog.records, 'records produced to the changelog: what it holds');
  const committed = value(m, 'foldstream_transactions_total', { ...pl, result: 'committed' });
  t.true(committed > 0);
  // exactly-once v2: one transaction of the runner covers every task with work in it, and writes one position marker
  // per such task's changelog, so a committed transaction wrote between 1 and `partitions` markers
  t.true(committed <= changelog.markers, 'every committed transaction wrote a position marker');
  t.true(changelog.markers <= committed * c.partitions, 'at most one marker per task and committed transaction');
  t.is(value(m, 'foldstream_transactions_total', { ...pl, result: 'aborted' }), 0);
  t.is(value(m, 'foldstream_processing_latency_seconds_count', pl), N, 'processing latency: one observation per record');
  t.is(value(m, 'foldstream_processing_latency_seconds_bucket', { ...pl, le: '+Inf' }), N);
  t.true(value(m, 'foldstream_processing_latency_seconds_sum', pl) > 0);
  t.is(value(m, 'foldstream_commit_latency_seconds_count', pl), committed, 'commit latency: one observation per commit');
  t.true(value(m, 'foldstream_commit_latency_seconds_sum', pl) > 0);
  for (const phase of ['produce', 'offsets', 'end_transaction', 'leveldb_apply']) {
    t.is(value(m, 'foldstream_commit_phase_seconds_count', { ...pl, phase }), committed, `commit phase ${phase}: one observation per commit`);
  }
  t.is(m.types.get('foldstream_transaction_retries_total'), 'counter');
  t.is(value(m, 'foldstream_end_to_end_latency_seconds_count', pl), N, 'end-to-end latency: one observation per committed input record');
  t.deepEqual(byPartition(m, 'foldstream_consumer_lag', { ...pl, topic: c.input }), partitionsOf(all(c)), 'lag 0 on every partition after catching up');
  t.deepEqual(byPartition(m, 'foldstream_restore_remaining_records', { ...pl, store: 'counts' }), partitionsOf(all(c)), 'nothing to restore on a fresh start');
  t.true(value(m, 'foldstream_rebalances_total', pl) >= 1, 'the first join is a rebalance');
  t.is(value(m, 'foldstream_assigned_tasks', pl), c.partitions);
  t.is(value(m, 'foldstream_tasks', { ...pl, state: 'running' }), c.partitions);
  t.is(value(m, 'foldstream_tasks', pl), c.partitions, 'no task in another state');
  t.true(value(m, 'foldstream_http_requests_total', { route: 'readyz', status: '200' }) >= 1, 'the readiness probes were counted');
  t.true(value(m, 'process_cpu_seconds_total') > 0, 'Node default metrics: process CPU');
  t.true(value(m, 'nodejs_heap_size_used_bytes') > 0, 'Node default metrics: heap');
  t.is(a.events('task.running').length, c.partitions);
  t.is(await a.stop(), 0, 'SIGTERM drains and exits 0');

  // 2. The state directory gone, a new instance restores every store from its changelog; the restores are held.
  rmSync(stateDir, { recursive: true, force: true });
  const release = join(c.dir, 'release-restore');
  const ends = await endOffsets(c.changelog, 'read_committed');
  const b = new Instance(c.file, { stateDir, name: 'b', preload: [HOLD_RESTORE], env: { FOLDSTREAM_TEST_HOLD_RESTORE: release } });
  instances.push(b);
  let readyz: Awaited<ReturnType<Instance['readyz']>>;
  await waitFor(async () => tasksOf((readyz = await b.readyz())?.body).length === c.partitions && Object.values((readyz!.body.processors as Record<string, { tasks: Record<string, string> }>).counter!.tasks).every((s) => s === 'restoring'), 60_000, 'every task restoring');
  t.is(readyz!.status, 503, '/readyz: not ready while tasks restore');
  t.is(readyz!.body.status, 'not ready');
  // a task is `restoring` from before it asks where its changelog ends; the gauge follows, and stays while the restore is held
  m = await settle(b, (s) => Object.keys(byPartition(s, 'foldstream_restore_remaining_records', pl)).length === c.partitions);
  t.is(value(m, 'foldstream_tasks', { ...pl, state: 'restoring' }), c.partitions);
  t.is(value(m, 'foldstream_tasks', { ...pl, state: 'running' }), 0);
  t.deepEqual(byPartition(m, 'foldstream_restore_remaining_records', { ...pl, store: 'counts' }), Object.fromEntries([...ends].map(([p, e]) => [String(p), Number(e)])), 'restore remaining: the whole changelog partition');
  t.is(value(m, 'foldstream_restore_records_total', pl), 0);

  writeFileSync(release, '');
  await b.waitReady();
  m = await settle(b, (s) => value(s, 'foldstream_tasks', { ...pl, state: 'running' }) === c.partitions);
  t.is(value(m, 'foldstream_restore_records_total', { ...pl, store: 'counts' }), changelog.records, 'restored records: the changelog, markers included');
  t.deepEqual(byPartition(m, 'foldstream_restore_remaining_records', { ...pl, store: 'counts' }), partitionsOf(all(c)), 'restore remaining: 0 when done');
  t.is(Number(b.events('task.running').reduce((n, e) => n + Number(e.restoredRecords), 0)), changelog.records);

  // 3. More input: the restored instance counts only what it consumed, and reports lag 0 once caught up.
  const M = 500;
  await produceCounting(c.input, M, KEYS);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  m = await settle(b, (s) => value(s, 'foldstream_records_produced_total', { ...pl, topic: c.output }) >= M && allZero(s, 'foldstream_consumer_lag', pl, all(c)));
  t.is(value(m, 'foldstream_records_consumed_total', { ...pl, topic: c.input }), M, 'only the records sent since the restart');
  t.is(value(m, 'foldstream_records_produced_total', { ...pl, topic: c.output }), M);
  t.deepEqual(byPartition(m, 'foldstream_consumer_lag', { ...pl, topic: c.input }), partitionsOf(all(c)));
  t.is(await b.stop(), 0);
});

test('a task moved to another instance takes its lag and restore series with it: each partition is reported by the instance that runs it', async (t) => {
  const c = await countingApp({ partitions: 6 });
  const pl = { processor: 'counter' };
  const instances = cleanUpAfter(t, c);
  const a = new Instance(c.file, { stateDir: c.stateDir('a'), name: 'a' });
  instances.push(a);
  await a.waitReady();
  await produceCounting(c.input, 1200, KEYS);
  await everyPartitionHasInput(t, c);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  t.true(allZero(await settle(a, (s) => allZero(s, 'foldstream_consumer_lag', pl, all(c))), 'foldstream_consumer_lag', pl, all(c)), 'a reports lag 0 for every partition');

  const b = new Instance(c.file, { stateDir: c.stateDir('b'), name: 'b' });
  instances.push(b);
  await b.waitReady();
  let split: number[][] = [];
  await waitFor(
    async () => {
      const [ra, rb] = [await a.readyz(), await b.readyz()];
      split = [tasksOf(ra?.body), tasksOf(rb?.body)];
      return ra?.status === 200 && rb?.status === 200 && split[0]!.length > 0 && split[1]!.length > 0 && split[0]!.length + split[1]!.length === c.partitions;
    },
    60_000,
    'the tasks split between a and b',
  );
  const [ofA, ofB] = split as [number[], number[]];
  // a closed the tasks it gave away (their task.closed lines), and with them their series
  await waitFor(() => ofB.every((p) => a.lines.some((l) => l.event === 'task.closed' && Number(l.partition) === p)), 30_000, 'a closed every task b took');
  let m = await scrape(a);
  t.deepEqual(Object.keys(byPartition(m, 'foldstream_consumer_lag', pl)).map(Number), ofA, 'a reports lag only for its own partitions');
  t.deepEqual(Object.keys(byPartition(m, 'foldstream_restore_remaining_records', pl)).map(Number), ofA, 'a reports restore progress only for its own partitions');
  t.is(value(m, 'foldstream_assigned_tasks', pl), ofA.length);
  t.true(value(m, 'foldstream_rebalances_total', pl) >= 2, 'a joined, then rebalanced when b came');

  // new input on every partition: each instance reports lag for exactly the partitions it runs
  await produceCounting(c.input, 1200, KEYS);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  const mb = await settle(b, (s) => allZero(s, 'foldstream_consumer_lag', pl, ofB));
  m = await settle(a, (s) => allZero(s, 'foldstream_consumer_lag', pl, ofA));
  t.deepEqual(byPartition(m, 'foldstream_consumer_lag', { ...pl, topic: c.input }), partitionsOf(ofA));
  t.deepEqual(byPartition(mb, 'foldstream_consumer_lag', { ...pl, topic: c.input }), partitionsOf(ofB));
  t.is(await b.stop(), 0);
  t.is(await a.stop(), 0);
});
