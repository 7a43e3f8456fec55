// What `foldstream dlq replay` may send back and where (app/dead-letters.ts): commands and a custom processor's plain
// input go back to their source topic and partition; events (the event store), views, replies and saga logs, and
// topics that are no longer an input, are refused with the reason. The re-sent record is the original one.
import test from 'ava';
import { deadLetterId, matches, redriveRecord, redriveTarget, toDeadLetter, REDRIVE_HEADER, type DeadLetter } from '../../src/app/dead-letters.ts';
import { DLQ_HEADERS } from '../../src/runtime/record-handler.ts';
import { parseTopology } from '../../src/topology/load.ts';

const { topology } = parseTopology(
  `app: a
kafka: { brokers: "127.0.0.1:9092" }
topics:
  commands: { name: a-commands, partitions: 3 }
  events: { name: a-events, partitions: 3, config: { retention.ms: "-1" } }
  replies: { name: a-replies, partitions: 3 }
  view: { name: a-view, partitions: 3 }
  log: { name: a-log, partitions: 3 }
  other: { name: a-other, partitions: 3 }
  out: { name: a-out, partitions: 3 }
processors:
  - { name: users, type: aggregate, aggregateType: User, input: commands, output: { events: events, replies: replies }, module: ./user.ts }
  - { name: v, type: projection, input: events, output: view, on: { X: { delete: true } } }
  - { name: c, type: custom, input: [other, view], module: ./c.ts, outputs: [out] }
`,
  'inline.yaml',
  { checkModules: false },
);
const proc = (name: string) => topology.processors.find((p) => p.name === name)!;

function letter(source: string, extra: Record<string, string> = {}): DeadLetter {
  return toDeadLetter({
    topic: 'a-x-dlq',
    partition: 2,
    offset: '41',
    timestamp: 1_000,
    key: Buffer.from('k1'),
    value: Buffer.from('{"v":1}'),
    headers: {
      'trace-id': Buffer.from('t-1'),
      [DLQ_HEADERS.code]: Buffer.from('HANDLER_FAILED'),
      [DLQ_HEADERS.message]: Buffer.from('boom (after 4 attempts)'),
      [DLQ_HEADERS.topic]: Buffer.from(source),
      [DLQ_HEADERS.partition]: Buffer.from('2'),
      [DLQ_HEADERS.offset]: Buffer.from('17'),
      [DLQ_HEADERS.timestamp]: Buffer.from('900'),
      [DLQ_HEADERS.processor]: Buffer.from('x'),
      ...extra,
    },
  });
}

test('a dead letter read from the DLQ says its reason and where it came from', (t) => {
  const d = letter('a-commands');
  t.is(d.code, 'HANDLER_FAILED');
  t.is(d.message, 'boom (after 4 attempts)');
  t.deepEqual(d.source, { topic: 'a-commands', partition: 2, offset: '17', timestamp: 900 });
  t.is(deadLetterId(d), '2@41');
});

test('commands and a custom processor\'s plain input go back to their source topic', (t) => {
  t.deepEqual(redriveTarget(topology, proc('users'), letter('a-commands')), { ok: true, topic: 'a-commands' });
  t.deepEqual(redriveTarget(topology, proc('c'), letter('a-other')), { ok: true, topic: 'a-other' });
});

test('an event is never sent again into the event store: a projection is pointed at replay', (t) => {
  const r = redriveTarget(topology, proc('v'), letter('a-events'));
  t.false(r.ok);
  t.regex(r.ok ? '' : r.why, /events topic: sending the event again would append it to the event store a second time\. Use `foldstream replay <file> v --aggregates <id>`/);
});

test('views, topics that are no longer an input and unknown topics are refused', (t) => {
  const view = redriveTarget(topology, proc('c'), letter('a-view'));
  t.regex(view.ok ? '' : view.why, /holds views: a copy sent again would be read as the newest/);
  const notInput = redriveTarget(topology, proc('users'), letter('a-other'));
  t.regex(notInput.ok ? '' : notInput.why, /topics\.other is no longer an input of users/);
  const internal = redriveTarget(topology, proc('v'), letter('a-v-repartition'));
  t.regex(internal.ok ? '' : internal.why, /not a declared topic of the topology/);
});

test('the re-sent record is the original: key, value, headers, partition and time, plus the dead letter it came from', (t) => {
  const r = redriveRecord(letter('a-commands'), 'a-commands');
  t.is(r.topic, 'a-commands');
  t.is(r.partition, 2);
  t.is(String(r.key), 'k1');
  t.is(String(r.value), '{"v":1}');
  t.is(r.timestamp, 900);
  t.deepEqual(Object.keys(r.headers!).sort(), ['trace-id', REDRIVE_HEADER].sort());
  t.is(r.headers![REDRIVE_HEADER], 'a-x-dlq/2@41');
});

test('filters: codes, keys, a time range [from, to) and ids', (t) => {
  const d = letter('a-commands');
  t.true(matches(d, {}));
  t.true(matches(d, { codes: ['KEY_MISSING', 'HANDLER_FAILED'] }));
  t.false(matches(d, { codes: ['KEY_MISSING'] }));
  t.true(matches(d, { keys: ['k1'] }));
  t.false(matches(d, { keys: ['k2'] }));
  t.true(matches(d, { from: 1_000, to: 1_001 }));
  t.false(matches(d, { to: 1_000 }));
  t.false(matches(d, { from: 1_001 }));
  t.true(matches(d, { ids: ['2@41'] }));
  t.false(matches(d, { ids: ['2@40'] }));
});
