// Punctuation schedules of one task: stream-time ones fire when stream time crosses a multiple of their interval,
// with the boundary as timestamp; neither clock catches up (a jump over several intervals fires once, as in Kafka
// Streams), so one record far in the future cannot start a storm of punctuations.
import test from 'ava';
import { PunctuationSchedule } from '../../src/runtime/punctuation.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { FIXTURES } from '../helpers/cli.ts';

type Fired = [name: string, at: number];

function recorder(): { fired: Fired[]; fn: (name: string) => (ts: number) => void } {
  const fired: Fired[] = [];
  return { fired, fn: (name) => (ts) => void fired.push([name, ts]) };
}

/** Fires like the task does: each punctuator through `run`, returning how many fired. */
function fire(s: PunctuationSchedule, type: 'stream-time' | 'wall-clock', now: number): Promise<number> {
  return s.fire(type, now, (p, at) => Promise.resolve(p.fn(at)));
}

test('a stream-time punctuation fires once per crossed multiple of its interval, with the boundary as timestamp', async (t) => {
  const s = new PunctuationSchedule();
  const r = recorder();
  s.add(1000, 'stream-time', r.fn('p'), 10_300); // scheduled at stream time 10.3 s
  t.is(await fire(s, 'stream-time', 10_999), 0, 'no boundary crossed yet');
  t.is(await fire(s, 'stream-time', 11_000), 1);
  t.deepEqual(r.fired, [['p', 11_000]]);
  t.is(await fire(s, 'stream-time', 11_500), 0, 'the same boundary never fires twice');
  t.is(await fire(s, 'stream-time', 12_001), 1);
  t.deepEqual(r.fired, [
    ['p', 11_000],
    ['p', 12_000],
  ]);
});

test('when stream time jumps several intervals, it fires once, with the latest boundary reached', async (t) => {
  const s = new PunctuationSchedule();
  const r = recorder();
  s.add(1000, 'stream-time', r.fn('p'), 10_000);
  t.is(await fire(s, 'stream-time', 14_500), 1);
  t.deepEqual(r.fired, [['p', 14_000]]);
  t.is(await fire(s, 'stream-time', 14_999), 0, 'the skipped boundaries are not made up');
  t.is(await fire(s, 'stream-time', 15_000), 1);
  t.deepEqual(r.fired.at(-1), ['p', 15_000]);
});

test('a stream-time punctuation far behind a record years ahead fires once, not once per interval', async (t) => {
  const s = new PunctuationSchedule();
  const r = recorder();
  s.add(1000, 'stream-time', r.fn('p'), 0);
  t.is(await fire(s, 'stream-time', 10 * 365 * 24 * 3_600_000), 1);
  t.is(r.fired.length, 1);
});

test('several due stream-time punctuations fire in the order of their boundaries', async (t) => {
  const s = new PunctuationSchedule();
  const r = recorder();
  s.add(1000, 'stream-time', r.fn('every-second'), 0);
  s.add(1500, 'stream-time', r.fn('every-1.5s'), 0);
  s.add(700, 'stream-time', r.fn('every-0.7s'), 0);
  await fire(s, 'stream-time', 3200);
  // boundary order; equal boundaries in the order they were scheduled
  t.deepEqual(r.fired, [
    ['every-0.7s', 2800],
    ['every-second', 3000],
    ['every-1.5s', 3000],
  ]);
});

test('a stream-time punctuation scheduled at a restored stream time does not fire for boundaries already passed', async (t) => {
  const s = new PunctuationSchedule();
  const r = recorder();
  s.add(1000, 'stream-time', r.fn('p'), 12_000); // stream time restored at exactly a boundary that already fired
  t.is(await fire(s, 'stream-time', 12_000), 0);
  t.is(await fire(s, 'stream-time', 12_999), 0);
  t.is(await fire(s, 'stream-time', 13_000), 1);
  t.deepEqual(r.fired, [['p', 13_000]]);
});

test('stream-time and wall-clock punctuations fire only for their own clock', async (t) => {
  const s = new PunctuationSchedule();
  const r = recorder();
  s.add(1000, 'stream-time', r.fn('stream'), 0);
  s.add(1000, 'wall-clock', r.fn('wall'), 0);
  t.true(s.hasWallClock);
  await fire(s, 'stream-time', 1000);
  t.deepEqual(r.fired, [['stream', 1000]]);
  await fire(s, 'wall-clock', 1000);
  t.deepEqual(r.fired, [
    ['stream', 1000],
    ['wall', 1000],
  ]);
});

test('a wall-clock punctuation fires from now: once after a long pause, and its next run is an interval after now', async (t) => {
  const s = new PunctuationSchedule();
  const r = recorder();
  s.add(1000, 'wall-clock', r.fn('w'), 5_200);
  t.is(await fire(s, 'wall-clock', 5_999), 0);
  t.is(await fire(s, 'wall-clock', 6_000), 1);
  // the process was paused for 4.5 intervals: one run, no catching up
  t.is(await fire(s, 'wall-clock', 10_500), 1);
  t.is(r.fired.length, 2);
  t.true(r.fired[1]![1] <= 10_500);
  t.is(await fire(s, 'wall-clock', 10_999), 0, 'the missed intervals are not made up');
  t.is(await fire(s, 'wall-clock', 11_000), 1);
  t.deepEqual(r.fired.at(-1), ['w', 11_000]);
});

test('cancel() stops one punctuation and leaves the others', async (t) => {
  const s = new PunctuationSchedule();
  const r = recorder();
  const a = s.add(1000, 'stream-time', r.fn('a'), 0);
  s.add(1000, 'stream-time', r.fn('b'), 0);
  const w = s.add(1000, 'wall-clock', r.fn('w'), 0);
  await fire(s, 'stream-time', 1000);
  a.cancel();
  w.cancel();
  t.false(s.hasWallClock);
  await fire(s, 'stream-time', 2000);
  await fire(s, 'stream-time', 3000);
  await fire(s, 'wall-clock', 3000);
  t.deepEqual(r.fired, [
    ['a', 1000],
    ['b', 1000],
    ['b', 2000],
    ['b', 3000],
  ]);
});

test('a punctuation that cancels another due one in the same round stops it from firing', async (t) => {
  const s = new PunctuationSchedule();
  const fired: string[] = [];
  let second: { cancel(): void } | undefined;
  s.add(1000, 'stream-time', () => {
    fired.push('first');
    second?.cancel();
  }, 0);
  second = s.add(2000, 'stream-time', () => void fired.push('second'), 0);
  t.is(await fire(s, 'stream-time', 2000), 1);
  t.deepEqual(fired, ['first']);
});

test('clear() cancels every punctuation', async (t) => {
  const s = new PunctuationSchedule();
  const r = recorder();
  s.add(1000, 'stream-time', r.fn('a'), 0);
  s.add(1000, 'wall-clock', r.fn('w'), 0);
  s.clear();
  t.false(s.hasWallClock);
  t.is(await fire(s, 'stream-time', 5000), 0);
  t.is(await fire(s, 'wall-clock', 5000), 0);
  t.deepEqual(r.fired, []);
});

test('an interval that is not positive is refused', (t) => {
  const s = new PunctuationSchedule();
  t.throws(() => s.add(0, 'stream-time', () => undefined, 0), { instanceOf: RangeError });
  t.throws(() => s.add(-5, 'wall-clock', () => undefined, 0), { instanceOf: RangeError });
});

// Through the TopologyTestDriver, which runs the runtime's TaskContext and schedule: a processor schedules a
// stream-time punctuation in init(), before its task has seen any record (stream time unknown).
const HOUR = 3_600_000;
const WEEK = 7 * 24 * HOUR; // the fixture's stream-time interval; its YAML punctuate below runs every two weeks

test('a stream-time punctuation scheduled before the first record counts from the first stream time, not from 1970', async (t) => {
  const yaml = `app: punct
kafka: { brokers: "127.0.0.1:9092" }
topics:
  input: { name: punct-input, partitions: 2 }
  summaries: { name: punct-summaries, partitions: 2 }
stores:
  counts: {}
  ticks: {}
processors:
  - name: p
    type: custom
    input: input
    module: ./modules/punctuating.ts
    stores: [counts, ticks]
    outputs: [summaries]
    punctuate: { intervalMs: ${2 * WEEK}, type: stream-time }
`;
  const driver = await TopologyTestDriver.fromYaml(yaml, FIXTURES);
  const T0 = Date.parse('2026-01-01T00:00:00.000Z'); // a multiple of two weeks since the epoch
  t.is(T0 % (2 * WEEK), 0);
  for (const [key, ts] of [['k1', T0 + HOUR], ['k2', T0 + 5 * HOUR], ['k1', T0 + WEEK + HOUR], ['k1', T0 + 4 * WEEK + HOUR]] as const) {
    await driver.pipe('input', key, { key }, { partition: 0, timestamp: ts });
  }
  const out = driver.output<{ kind: string; at: number }>('summaries').map((r) => r.value);
  const at = (kind: string) => out.filter((v) => v.kind === kind).map((v) => v.at - T0);
  const stream = at('stream');
  // first stream time T0+1h; W is crossed by the third record; the fourth jumps over 2W and 3W to 4W: one firing
  t.is(stream.length, 2, `stream-time punctuation fired ${stream.length} times, the first for ${new Date(T0 + (stream[0] ?? 0)).toISOString()}`);
  if (stream.length < 100) t.deepEqual(stream, [WEEK, 4 * WEEK]);
  const yamlFired = at('yaml');
  t.is(yamlFired.length, 1, `YAML punctuate fired ${yamlFired.length} times`);
  if (yamlFired.length < 100) t.deepEqual(yamlFired, [4 * WEEK]);
  await driver.close();
});

test('mayFire() is false only when fire() would do nothing, so the task may skip it per record', async (t) => {
  const s = new PunctuationSchedule();
  const fired: number[] = [];
  s.add(1000, 'stream-time', (ts) => void fired.push(ts), -1);
  s.add(300, 'wall-clock', () => t.fail('wall-clock fired by stream time'), 0);
  t.false(s.mayFire('stream-time', -1));
  let skipped = 0;
  for (let now = 0; now < 5000; now += 7) {
    const before = fired.length;
    const may = s.mayFire('stream-time', now);
    const n = await s.fire('stream-time', now, async (p, at) => p.fn(at));
    t.is(fired.length - before, n);
    if (!may) {
      t.is(n, 0, `at ${now}`);
      skipped++;
    }
  }
  t.deepEqual(fired, [1000, 2000, 3000, 4000]);
  t.true(skipped > 600);
});
