// Punctuations on the real broker (fixture: test/fixtures/modules/punctuating.ts). Records carry explicit
// timestamps, so stream-time punctuations are exact: which boundaries fire, with what store state. A wall-clock
// punctuation writes to a store and forwards in the same transaction. Stream time is restored with the position.
import test, { type ExecutionContext } from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import { App } from '../../src/app/app.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { FIXTURES } from '../helpers/cli.ts';
import { BROKERS, createTopics, deleteTopics, kafka, openTransactions, readAll, unique, withAdmin, type ReadRecord } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { metricValue, waitFor } from '../helpers/processes.ts';

const HOUR = 3_600_000;
/** the fixture's stream-time interval (init) is a week; the YAML punctuate: interval is two weeks */
const WEEK = 7 * 24 * HOUR;
const YAML_INTERVAL = 2 * WEEK;
/** Record time starts at a multiple of two weeks, 6 to 8 weeks ago (the input keeps records: retention.ms -1). */
const T0 = Math.floor((Date.now() - 6 * WEEK) / YAML_INTERVAL) * YAML_INTERVAL;
/** hours after T0 */
const w = (weeks: number, hours = 0) => weeks * 168 + hours;

interface PunctuatingApp {
  app: string;
  dir: string;
  file: string;
  input: string;
  output: string;
  countsChangelog: string;
  ticksChangelog: string;
  stateDir(name: string): string;
}

async function punctuatingApp(t: ExecutionContext): Promise<PunctuatingApp> {
  const app = unique('punct');
  const dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const input = `${app}-input`;
  const output = `${app}-summaries`;
  const file = join(dir, 'topology.yaml');
  writeFileSync(
    file,
    [
      `app: ${app}`,
      `kafka: { brokers: "${BROKERS.join(',')}" }`,
      'processing:',
      '  commitIntervalMs: 100',
      '  sessionTimeoutMs: 10000',
      '  heartbeatIntervalMs: 1000',
      'http: { port: 0 }',
      `modules: { root: ${FIXTURES} }`,
      'topics:',
      `  input: { name: ${input}, partitions: 2, config: { retention.ms: "-1" } }`,
      `  summaries: { name: ${output}, partitions: 2 }`,
      'stores:',
      '  counts: {}',
      '  ticks: {}',
      'processors:',
      '  - name: punctuator',
      '    type: custom',
      '    input: input',
      `    module: ${join(FIXTURES, 'modules/punctuating.ts')}`,
      '    stores: [counts, ticks]',
      '    outputs: [summaries]',
      `    punctuate: { intervalMs: ${YAML_INTERVAL}, type: stream-time }`,
      '',
    ].join('\n'),
  );
  await createTopics([{ topic: input, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '-1' }] }]);
  const c: PunctuatingApp = {
    app,
    dir,
    file,
    input,
    output,
    countsChangelog: `${app}-punctuator-counts-changelog`,
    ticksChangelog: `${app}-punctuator-ticks-changelog`,
    stateDir: (name) => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      return d;
    },
  };
  t.teardown(async () => {
    if (!process.env.KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
    await deleteTopics([input, output, c.countsChangelog, c.ticksChangelog, `${app}-punctuator-dlq`]);
  });
  return c;
}

type In = [partition: number, key: string, timestamp: number];

/** Produces records with explicit timestamps, in order per partition. */
async function produce(topic: string, records: In[]): Promise<void> {
  const producer = kafka('punctuation-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: records.map(([partition, key, ts]) => ({ partition, key, value: JSON.stringify({ key }), timestamp: String(ts) })),
    });
  } finally {
    await producer.disconnect();
  }
}

/** Runs the app until it has consumed `records` records (and, optionally, run `wallTicks` wall-clock punctuations). */
async function runUntil(c: PunctuatingApp, stateDir: string, during: () => Promise<void>, until: { records: number; wallTicks?: number }): Promise<void> {
  const app = new App(loadTopology(c.file), { log: memoryLogger(), stateDir, httpPort: 0 });
  await app.start();
  try {
    await during();
    await waitFor(
      async () => {
        const m = await app.registry.metrics();
        return (
          metricValue(m, 'foldstream_records_consumed_total', { processor: 'punctuator' }) >= until.records &&
          metricValue(m, 'foldstream_punctuations_total', { processor: 'punctuator', type: 'wall-clock' }) >= (until.wallTicks ?? 0)
        );
      },
      120_000,
      `${until.records} records consumed`,
    );
  } finally {
    await app.stop();
  }
}

interface Summary {
  kind: 'stream' | 'wall' | 'yaml';
  partition: number;
  at?: number;
  streamTime?: number;
  keys?: number;
  total?: number;
  n?: number;
}

const summaries = (records: ReadRecord[]): (Summary & { offset: bigint })[] =>
  records
    .sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))
    .map((r) => ({ ...(JSON.parse(String(r.value)) as Summary), offset: BigInt(r.offset) }));

/** Stream-time summaries of one partition, relative to T0 and in hours, so a failure reads well. */
function fired(all: Summary[], kind: 'stream' | 'yaml', partition: number): Record<string, number>[] {
  return all
    .filter((s) => s.kind === kind && s.partition === partition)
    .map((s) => ({
      at: (s.at! - T0) / HOUR,
      streamTime: (s.streamTime! - T0) / HOUR,
      ...(kind === 'stream' ? { keys: s.keys!, total: s.total! } : {}),
    }));
}

function assertFired(t: ExecutionContext, got: Record<string, number>[], expected: Record<string, number>[], what: string): void {
  // A runaway schedule fires thousands of times: say how many and from when, rather than diffing them all.
  t.is(got.length, expected.length, `${what}: fired ${got.length} times${got.length ? `, first for ${new Date(T0 + got[0]!.at! * HOUR).toISOString()}` : ''}`);
  if (got.length <= 2 * expected.length) t.deepEqual(got, expected, what);
}

test('stream-time punctuations fire when stream time crosses a boundary, once however far it jumps, with the store as it was; the YAML punctuate fires on its own interval', async (t) => {
  const c = await punctuatingApp(t);
  const records: In[] = [
    [0, 'k1', T0 + 1 * HOUR],
    [0, 'k2', T0 + 5 * HOUR],
    [0, 'k1', T0 + WEEK + 1 * HOUR], // crosses week 1
    [0, 'k3', T0 + WEEK + 2 * HOUR],
    [0, 'k2', T0 + WEEK + 30 * 60_000], // late: stream time does not move back
    [0, 'k1', T0 + 4 * WEEK + 1 * HOUR], // jumps over weeks 2 and 3 to 4: fires once, for week 4
    [1, 'k4', T0 + 2 * HOUR],
    [1, 'k5', T0 + 2 * WEEK], // exactly on a boundary, jumping over week 1: fires once, for week 2
  ];
  await runUntil(c, c.stateDir('a'), () => produce(c.input, records), { records: records.length });
  const all = summaries(await readAll([c.output]));
  assertFired(t, fired(all, 'stream', 0), [
    { at: w(1), streamTime: w(1, 1), keys: 2, total: 3 },
    { at: w(4), streamTime: w(4, 1), keys: 3, total: 6 },
  ], 'stream-time punctuation, partition 0');
  assertFired(t, fired(all, 'stream', 1), [{ at: w(2), streamTime: w(2), keys: 2, total: 2 }], 'stream-time punctuation, partition 1');
  assertFired(t, fired(all, 'yaml', 0), [{ at: w(4), streamTime: w(4, 1) }], 'YAML punctuate, partition 0');
  assertFired(t, fired(all, 'yaml', 1), [{ at: w(2), streamTime: w(2) }], 'YAML punctuate, partition 1');
});

/** The ticks store per partition, as its changelog says. */
async function ticksInChangelog(topic: string): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const r of (await readAll([topic])).sort((a, b) => Number(BigInt(a.offset) - BigInt(b.offset)))) {
    if (r.key === `wall-p${r.partition}` && r.value) out.set(r.partition, unpack(r.value) as number);
  }
  return out;
}

test('a wall-clock punctuation runs without input, and its store write and its output commit together, also across a restart', async (t) => {
  const c = await punctuatingApp(t);
  const stateDir = c.stateDir('a');
  const check = async (run: string): Promise<Map<number, number>> => {
    const ticks = await ticksInChangelog(c.ticksChangelog);
    const outputs = summaries(await readAll([c.output])).filter((s) => s.kind === 'wall');
    for (const p of [0, 1]) {
      const stored = ticks.get(p) ?? 0;
      t.true(stored >= 1, `${run}: partition ${p} ticked at least once`);
      const ns = outputs.filter((s) => s.partition === p).map((s) => s.n!);
      // every committed tick has its output and every output its tick: 1..N, each once, N the stored count
      t.deepEqual(ns, Array.from({ length: stored }, (_, i) => i + 1), `${run}: partition ${p} outputs match the stored tick count ${stored}`);
    }
    t.deepEqual(await openTransactions(c.output), [], 'no transaction left open on the output');
    t.deepEqual(await openTransactions(c.ticksChangelog), [], 'no transaction left open on the changelog');
    return ticks;
  };
  await runUntil(c, stateDir, async () => undefined, { records: 0, wallTicks: 6 });
  const first = await check('first run');
  await runUntil(c, stateDir, async () => undefined, { records: 0, wallTicks: 4 });
  const second = await check('after a restart');
  for (const p of [0, 1]) t.true(second.get(p)! > first.get(p)!, `partition ${p}: ticks continue from the stored count`);
});

test('after a restart stream time comes back with the position: a boundary already passed does not fire again', async (t) => {
  const c = await punctuatingApp(t);
  const stateDir = c.stateDir('a');
  const endOf = async () => withAdmin(async (a) => BigInt((await a.fetchTopicOffsets(c.output)).find((p) => p.partition === 0)!.high));

  // First run: weeks 1 and 2 fire; stream time ends at week 2 + 5 h.
  const first: In[] = [
    [0, 'k1', T0 + 1 * HOUR],
    [0, 'k1', T0 + WEEK + 1 * HOUR],
    [0, 'k1', T0 + 2 * WEEK + 1 * HOUR],
    [0, 'k1', T0 + 2 * WEEK + 5 * HOUR],
  ];
  await runUntil(c, stateDir, () => produce(c.input, first), { records: first.length });
  const afterFirst = summaries(await readAll([c.output]));
  const firstAt = fired(afterFirst, 'stream', 0).map((s) => s.at);
  t.true(firstAt.includes(w(1)) && firstAt.includes(w(2)), `the first run fired weeks 1 and 2: ${firstAt.length} firings`);
  let end = await endOf();

  // Restart on the same state directory (position from the LevelDB checkpoint). A late record and one before day 3
  // cross nothing that has not fired; week 3 fires once.
  const second: In[] = [
    [0, 'k1', T0 + WEEK + 3 * HOUR],
    [0, 'k1', T0 + 2 * WEEK + 100 * HOUR],
    [0, 'k1', T0 + 3 * WEEK + 1 * HOUR],
  ];
  await runUntil(c, stateDir, () => produce(c.input, second), { records: second.length });
  const afterSecond = summaries(await readAll([c.output])).filter((s) => s.partition === 0 && s.offset >= end);
  assertFired(t, fired(afterSecond, 'stream', 0), [{ at: w(3), streamTime: w(3, 1), keys: 1, total: 7 }], 'after a restart from the checkpoint');
  assertFired(t, fired(afterSecond, 'yaml', 0), [], 'YAML punctuate after a restart from the checkpoint');
  end = await endOf();

  // Restart with the state directory gone: the position (and its stream time) comes back from the changelog marker.
  const third: In[] = [
    [0, 'k1', T0 + 2 * WEEK + 160 * HOUR],
    [0, 'k1', T0 + 3 * WEEK + 2 * HOUR],
    [0, 'k1', T0 + 4 * WEEK + 1 * HOUR],
  ];
  rmSync(stateDir, { recursive: true, force: true });
  await runUntil(c, c.stateDir('a'), () => produce(c.input, third), { records: third.length });
  const afterThird = summaries(await readAll([c.output])).filter((s) => s.partition === 0 && s.offset >= end);
  assertFired(t, fired(afterThird, 'stream', 0), [{ at: w(4), streamTime: w(4, 1), keys: 1, total: 10 }], 'after a restore from the changelog');
  assertFired(t, fired(afterThird, 'yaml', 0), [{ at: w(4), streamTime: w(4, 1) }], 'YAML punctuate after a restore from the changelog');
});
