// The TopologyTestDriver's own API: clocks and punctuations, envelope conveniences, marks, replies by commandId,
// dead letters, an aggregate's history appended through its own evolve, and stores seeded with raw values.
import test from 'ava';
import { join } from 'node:path';
import type { EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { FIXTURES, ROOT } from '../helpers/cli.ts';
import { memoryLogger } from '../helpers/log.ts';

const users = () => TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));

const punctuating = `app: punct
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
`;

test('advancing the wall clock fires a scheduled wall-clock punctuation in every task, once per advance, without catching up', async (t) => {
  const d = await TopologyTestDriver.fromYaml(punctuating, FIXTURES); // clock at 2026-01-01T00:00:00Z, a multiple of 200 ms
  await d.advanceWallClock(199);
  t.deepEqual(d.output('summaries'), [], 'the interval has not passed');
  await d.advanceWallClock(1);
  // no record was piped: every partition's task exists from the start, as in the runtime
  t.deepEqual(d.output('summaries').map((r) => [r.key, r.value, r.timestamp]), [
    ['p0', { kind: 'wall', partition: 0, n: 1 }, d.now],
    ['p1', { kind: 'wall', partition: 1, n: 1 }, d.now],
  ]);
  await d.advanceWallClock(1000); // five intervals: one run each
  t.deepEqual(Object.fromEntries(await d.store('p', 'ticks')), { 'wall-p0': 2, 'wall-p1': 2 });
  t.is(d.output('summaries').length, 4);
});

test('advancing stream time fires a stream-time punctuation at the interval boundary it crossed', async (t) => {
  const d = await TopologyTestDriver.fromYaml(punctuating, FIXTURES);
  const WEEK = 7 * 86_400_000;
  const T0 = Date.parse('2026-01-01T00:00:00.000Z'); // a multiple of a week since the epoch
  await d.pipe('input', 'a', { n: 1 }, { partition: 1, timestamp: T0 + 1000 });
  await d.advanceStreamTime(T0 + WEEK - 1);
  t.deepEqual(d.output('summaries'), []);
  await d.advanceStreamTime(T0 + 2 * WEEK + 5, 'p');
  // partition 0 has seen no record, but got a stream time from the first advance
  t.deepEqual(d.output('summaries').map((r) => r.value), [
    { kind: 'stream', partition: 0, at: T0 + 2 * WEEK, streamTime: T0 + 2 * WEEK + 5, keys: 0, total: 0 },
    { kind: 'stream', partition: 1, at: T0 + 2 * WEEK, streamTime: T0 + 2 * WEEK + 5, keys: 1, total: 1 },
  ]);
});

test('a punctuation that throws is undone (its writes and outputs) and logged, and the next one runs, as in the runtime', async (t) => {
  const yaml = `app: thrower
kafka: { brokers: "127.0.0.1:9092" }
topics:
  input: { name: t-input, partitions: 1 }
  out: { name: t-out, partitions: 1 }
stores:
  ticks: {}
processors:
  - name: p
    type: custom
    input: input
    module: ./modules/throwing-punctuation.ts
    stores: [ticks]
    outputs: [out]
`;
  const log = memoryLogger();
  const d = await TopologyTestDriver.fromYaml(yaml, FIXTURES, { log });
  for (let i = 0; i < 3; i++) await d.advanceWallClock(100);
  // run 1 kept; run 2 (n = 2) threw and was undone, so run 3 computes n = 2 again and throws too
  t.deepEqual(d.output('out').map((r) => (r.value as { n: number }).n), [1]);
  t.deepEqual(Object.fromEntries(await d.store('p', 'ticks')), { n: 1 });
  t.deepEqual(log.events('punctuation.failed').map((e) => e.error), ['punctuation 2 failed', 'punctuation 2 failed']);
});

test('pipeCommand fills in commandId and data, keys the command by its aggregate, and returns its reply', async (t) => {
  const d = await users();
  const reply = await d.pipeCommand({ commandType: 'CreateUser', aggregateId: 'u1', data: { email: 'ann@x.example' } });
  t.like(reply, { commandId: 'cmd-1', status: 'accepted', aggregateVersion: 1 });
  const [record] = d.output<EventEnvelope>('events');
  t.is(record?.key, 'u1');
  t.is(record?.partition, partitionForKey('u1', 12));
  t.like(await d.pipeCommand({ commandType: 'UpdateEmail', aggregateId: 'u1' }), { commandId: 'cmd-2', status: 'rejected', code: 'INVALID_EMAIL' });
  // a command that goes to the dead-letter topic has no reply
  t.is(await d.pipeCommand({ commandType: 'CreateUser', aggregateId: 'u2', data: {} }, { key: 'someone-else' }), undefined);
  t.deepEqual(d.deadLetters('users').map((l) => l.code), ['KEY_MISMATCH']);
});

test('replies(commandId) gives every reply to a command in order; reply(commandId) the last', async (t) => {
  const d = await users();
  const create = { commandId: 'c1', commandType: 'CreateUser', aggregateId: 'u1', data: { email: 'ann@x.example' } };
  await d.pipeCommand(create);
  await d.pipeCommand({ commandId: 'c2', commandType: 'UpgradeStatus', aggregateId: 'u1', data: { status: 'GOLD' } });
  await d.pipeCommand(create);
  const replies = d.replies('c1');
  t.is(replies.length, 2);
  t.deepEqual(replies[1], replies[0]);
  t.like(d.reply('c2'), { status: 'accepted', aggregateVersion: 2 });
  t.deepEqual(d.replies('nope'), []);
});

test('pipeEvent fills in what an aggregate would: eventId, eventVersion, aggregateType, the next version and the time', async (t) => {
  const byAggregate = await users();
  await byAggregate.pipeCommand({ commandType: 'CreateUser', aggregateId: 'u1', data: { email: 'ann@x.example' } });
  await byAggregate.pipeCommand({ commandType: 'UpgradeStatus', aggregateId: 'u1', data: { status: 'GOLD' } });
  const [, upgraded] = byAggregate.output<EventEnvelope>('events').map((r) => r.value);

  const d = await users();
  await d.pipeEvent({ eventType: 'UserCreated', aggregateId: 'u1', eventVersion: 2, data: { email: 'ann@x.example', fullName: '', status: 'ACTIVE' } });
  const piped = await d.pipeEvent({ eventType: 'StatusUpgraded', aggregateId: 'u1', data: { oldStatus: 'ACTIVE', status: 'GOLD' } });
  t.deepEqual(piped, {
    eventId: upgraded!.eventId, // the aggregate's id for this topic, key and version
    eventType: 'StatusUpgraded',
    eventVersion: 1,
    aggregateType: 'User',
    aggregateId: 'u1',
    aggregateVersion: 2,
    timestamp: '2026-01-01T00:00:00.000Z',
    data: { oldStatus: 'ACTIVE', status: 'GOLD' },
  });
  t.like(d.latest('user-view').get('u1'), { status: 'GOLD', statusHistory: ['GOLD'] });
});

test('output(topic, { since: mark() }) reads only what was written after the mark', async (t) => {
  const d = await users();
  await d.pipeCommand({ commandType: 'CreateUser', aggregateId: 'u1', data: { email: 'ann@x.example' } });
  const mark = d.mark();
  await d.pipeCommand({ commandType: 'UpdateEmail', aggregateId: 'u1', data: { email: 'b@x.example' } });
  t.deepEqual(d.output<EventEnvelope>('events', { since: mark }).map((r) => r.value.eventType), ['EmailChanged']);
  t.deepEqual(d.output<EventEnvelope>('events').map((r) => r.value.eventType), ['UserCreated', 'EmailChanged']);
  t.deepEqual(d.output('user-view', { since: mark }).map((r) => r.headers['foldstream.view.version']), ['2']);
});

test('dead letters carry their error code and message, where they came from, and the original value decoded', async (t) => {
  const d = await users();
  await d.pipe('events', 'u1', Buffer.from('{"eventId": '), { raw: true, partition: 3 });
  await d.pipeEvent({ eventType: 'UserCreated', aggregateId: 'u2', eventVersion: 9, data: {} });
  const [undecodable, tooNew] = d.deadLetters('user-view');
  t.like(undecodable, { code: 'DESERIALIZATION_FAILED', source: { topic: 'events', partition: 3, offset: '0' }, original: '{"eventId": ', key: 'u1' });
  t.regex(undecodable!.message, /^value is not JSON/);
  t.like(tooNew, { code: 'EVENT_VERSION_UNSUPPORTED', original: { eventType: 'UserCreated', eventVersion: 9, aggregateId: 'u2' } });
});

// issue 14, defect 7: a string with raw: true threw a TypeError from deep inside the record handler
test('pipe with raw: true sends a string as its UTF-8 bytes, and refuses a value that is no bytes with a clear error', async (t) => {
  const d = await users();
  await d.pipe('events', 'u1', '{"eventId": ', { raw: true, partition: 3 });
  await d.pipe('commands', 'u2', JSON.stringify({ commandId: 'c1', commandType: 'CreateUser', aggregateId: 'u2', data: { email: 'é@x.example' } }), { raw: true });
  t.like(d.deadLetters('user-view')[0], { code: 'DESERIALIZATION_FAILED', original: '{"eventId": ', key: 'u1' });
  t.like(d.reply('c1'), { status: 'accepted', aggregateVersion: 1 });
  t.is(d.output<EventEnvelope>('events')[0]!.value.data.email, 'é@x.example');
  await d.pipe('events', 'u3', new Uint8Array(Buffer.from('nope')), { raw: true });
  t.like(d.deadLetters('user-view')[1], { code: 'DESERIALIZATION_FAILED', original: 'nope', key: 'u3' });
  await t.throwsAsync(d.pipe('events', 'u1', { eventId: 'e1' }, { raw: true }), {
    instanceOf: TypeError,
    message: /raw: true \}\) takes a string \(sent as UTF-8\), a Buffer or Uint8Array, or null \(a tombstone\); got an object/,
  });
});

test("appendEvents gives an aggregate its history through its own evolve: state, history, the events topic and the views", async (t) => {
  const d = await users();
  const appended = await d.appendEvents('users', 'u1', [
    { type: 'UserCreated', eventVersion: 2, data: { email: 'ann@x.example', fullName: 'Ann', status: 'ACTIVE' } },
    { type: 'StatusUpgraded', data: { oldStatus: 'ACTIVE', status: 'SILVER' } },
  ]);
  t.deepEqual(appended.map((e) => [e.eventType, e.aggregateVersion, e.aggregateType]), [['UserCreated', 1, 'User'], ['StatusUpgraded', 2, 'User']]);
  // the state is what the decider's evolve made of the events
  t.deepEqual((await d.store('users', 'state')).get('u1'), { version: 2, state: { exists: true, email: 'ann@x.example', fullName: 'Ann', status: 'SILVER' } });
  t.deepEqual([...(await d.store<EventEnvelope>('users', 'history')).values()], appended);
  t.deepEqual(d.output<EventEnvelope>('events').map((r) => r.value), appended);
  t.like(d.latest('user-view').get('u1'), { email: 'ann@x.example', status: 'SILVER' });
  t.deepEqual(d.output('replies'), [], 'no command, no reply');
  // the next command is decided on that state, at the next version
  const reply = await d.pipeCommand({ commandType: 'UpgradeStatus', aggregateId: 'u1', expectedVersion: 2, data: { status: 'ACTIVE' } });
  t.like(reply as Reply, { status: 'rejected', code: 'NOT_AN_UPGRADE', aggregateVersion: 2 });
  await t.throwsAsync(d.appendEvents('user-view', 'u1', []), { message: 'processor "user-view" is not an aggregate' });
  await t.throwsAsync(d.appendEvents('users', 'u1', [{ type: '' }]), { message: /given events: decide\(\) returned an object where an event/ });
});

const counting = `app: seeded
kafka: { brokers: "127.0.0.1:9092" }
topics:
  input: { name: seeded-input, partitions: 4 }
  counts: { name: seeded-counts, partitions: 4 }
stores:
  counts: {}
processors:
  - name: c
    type: custom
    input: input
    module: ./modules/counter.ts
    stores: [counts]
    outputs: [counts]
`;

test('seedStore writes a store entry in the task of the partition that owns its key, and the processor counts on from it', async (t) => {
  const d = await TopologyTestDriver.fromYaml(counting, FIXTURES); // counter.ts: counts[key] + 1, forwarded as { key, n }
  t.is(partitionForKey('c', 4), 2, 'a key outside partition 0');
  await d.seedStore('c', 'counts', 'c', 41);
  t.deepEqual(Object.fromEntries(await d.store('c', 'counts')), { c: 41 });
  await d.pipe('input', 'c', {});
  t.deepEqual(d.output('counts').map((r) => [r.partition, r.value]), [[2, { key: 'c', n: 42, source: '2@0' }]]);
  // seeded into another partition's task, the entry is not where the processor looks for that key
  await d.seedStore('c', 'counts', 'd', 9, 3);
  await d.pipe('input', 'd', {});
  t.like(d.output('counts').at(-1)?.value, { key: 'd', n: 1 });
  await t.throwsAsync(d.seedStore('c', 'nope', 'c', 1), { message: 'processor "c" has no store "nope"' });
});

test("seedStore gives an aggregate a state its next command is decided on", async (t) => {
  const d = await users();
  await d.seedStore('users', 'state', 'u1', { version: 3, state: { exists: true, email: 'ann@x.example', fullName: 'Ann', status: 'SILVER' } });
  const reply = await d.pipeCommand({ commandType: 'UpgradeStatus', aggregateId: 'u1', expectedVersion: 3, data: { status: 'GOLD' } });
  t.like(reply as Reply, { status: 'accepted', aggregateVersion: 4 });
  t.like(d.output<EventEnvelope>('events')[0]?.value, { eventType: 'StatusUpgraded', aggregateVersion: 4, data: { oldStatus: 'SILVER', status: 'GOLD' } });
  t.deepEqual((await d.store('users', 'state')).get('u1'), { version: 4, state: { exists: true, email: 'ann@x.example', fullName: 'Ann', status: 'GOLD' } });
});

test('a driver can be built from a topology object', async (t) => {
  const d = await TopologyTestDriver.fromObject(
    {
      app: 'obj',
      kafka: { brokers: '127.0.0.1:9092' },
      topics: { commands: { name: 'c', partitions: 2 }, events: { name: 'e', partitions: 2 }, replies: { name: 'r', partitions: 2 } },
      processors: [{ name: 'users', type: 'aggregate', aggregateType: 'User', input: 'commands', output: { events: 'events', replies: 'replies' }, module: './examples/users/user.ts' }],
    },
    ROOT,
  );
  t.like(await d.pipeCommand({ commandType: 'CreateUser', aggregateId: 'u1', data: { email: 'a@x.example' } }), { status: 'accepted' });
  t.deepEqual(d.processors, ['users']);
});

const recordContext = (module: string) => `app: ctx
kafka: { brokers: "127.0.0.1:9092" }
topics:
  input: { name: ctx-input, partitions: 2 }
  seen: { name: ctx-seen, partitions: 2 }
stores:
  last: {}
processors:
  - name: p
    type: custom
    input: input
    module: ./modules/${module}
    stores: [last]
    outputs: [seen]
`;

for (const module of ['record-context.js', 'record-context.cjs']) {
  // stream time includes the record being processed, as in Kafka Streams (its stream-time punctuations fire after it)
  test(`a custom processor in ${module} (resolved next to the topology) sees the record's topic, partition, offset, timestamp and headers, stream time including the record, and forwards headers`, async (t) => {
    const d = await TopologyTestDriver.fromYaml(recordContext(module), FIXTURES);
    await d.pipe('input', 'k', { a: 1 }, { partition: 1, timestamp: 1_000, headers: { 'trace-id': 't1' } });
    await d.pipe('input', 'k', { a: 2 }, { partition: 1, timestamp: 2_000 });
    const seen = d.output('seen');
    const out = partitionForKey('k', 2); // forward() partitions by the key, as producers do, not by the input partition
    t.deepEqual(
      seen.map((r) => [r.partition, r.value, r.headers]),
      [
        [out, { topic: 'ctx-input', partition: 1, offset: '0', timestamp: 1_000, headers: { 'trace-id': 't1' }, before: null, streamTime: 1_000 }, { 'seen-by': module }],
        [out, { topic: 'ctx-input', partition: 1, offset: '1', timestamp: 2_000, headers: {}, before: '0', streamTime: 2_000 }, { 'seen-by': module }],
      ],
    );
    t.deepEqual(Object.fromEntries(await d.store('p', 'last')), { k: '1' });
  });
}

test('outputs are dated at most processing.maxClockSkewMs past the wall clock: a command dated years ahead gets its reply and event, a dead letter keeps the original time in its header, older times stay', async (t) => {
  const d = await TopologyTestDriver.fromYaml(
    `app: skew
kafka: { brokers: "127.0.0.1:9092" }
processing: { maxClockSkewMs: 5000 }
topics:
  commands: { name: skew-commands, partitions: 2 }
  events: { name: skew-events, partitions: 2 }
  replies: { name: skew-replies, partitions: 2 }
processors:
  - name: users
    type: aggregate
    aggregateType: User
    input: commands
    output: { events: events, replies: replies }
    module: ${join(ROOT, 'examples/users/user.ts')}
`,
    ROOT,
  );
  t.teardown(() => d.close());
  const ahead = d.now + 10 * 365 * 24 * 3_600_000;
  const reply = await d.pipeCommand({ commandId: 'c-1', commandType: 'CreateUser', aggregateId: 'u-1', data: { email: 'a@example.com' } }, { timestamp: ahead });
  t.is(reply?.status, 'accepted');
  // a broker refuses a record dated more than message.timestamp.after.max.ms ahead: the outputs are held to the wall clock + 5 s
  t.deepEqual(d.output('replies').map((r) => r.timestamp), [d.now + 5000]);
  const [event] = d.output<EventEnvelope>('events');
  t.is(event!.timestamp, d.now + 5000);
  // the event's own time is the command's, as before: only the record time is held
  t.is(event!.value.timestamp, new Date(ahead).toISOString());
  // a dead letter: its record time held, the original time in foldstream.source.timestamp
  await d.pipe('commands', 'u-1', 'not json', { raw: true, timestamp: ahead });
  const [dead] = d.deadLetters('users');
  t.is(dead!.timestamp, d.now + 5000);
  t.is(dead!.headers['foldstream.source.timestamp'], String(ahead));
  // times behind the wall clock (a replay) and within the skew are kept as they are
  const behind = d.now - 3_600_000;
  await d.pipeCommand({ commandId: 'c-2', commandType: 'UpgradeStatus', aggregateId: 'u-1', data: { status: 'GOLD' } }, { timestamp: behind });
  await d.pipeCommand({ commandId: 'c-3', commandType: 'UpgradeStatus', aggregateId: 'u-1', data: { status: 'VIP' } }, { timestamp: d.now + 4000 });
  t.deepEqual(d.output('replies').map((r) => r.timestamp), [d.now + 5000, behind, d.now + 4000]);
});
