// Bad input with no broker (DESIGN §8): each kind of malformed command or event lands in the processor's DLQ with
// its reason, the original bytes and headers, and where it came from; the records after it are processed.
import test from 'ava';
import { join } from 'node:path';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { ROOT } from '../helpers/cli.ts';
import { command } from '../helpers/user-model.ts';

interface Bad {
  kind: string;
  key: string | null;
  value: Buffer;
  code: string;
  message: RegExp;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const good = (id: string) => command('CreateUser', id, { email: `${id}@x.example` });

const badCommands: Bad[] = [
  { kind: 'undecodable bytes', key: 'u1', value: Buffer.from('{"commandId": "c1", '), code: 'DESERIALIZATION_FAILED', message: /^value is not JSON/ },
  { kind: 'bytes that are not UTF-8', key: 'u1', value: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), code: 'DESERIALIZATION_FAILED', message: /not valid UTF-8/ },
  { kind: 'a value that is not an object', key: 'u1', value: json([1, 2]), code: 'ENVELOPE_INVALID', message: /^command envelope must be an object, got a list$/ },
  {
    kind: 'missing envelope fields',
    key: 'u1',
    value: json({ commandType: 'CreateUser', aggregateId: 'u1' }),
    code: 'ENVELOPE_INVALID',
    message: /^command envelope: missing field "commandId"; missing field "data"$/,
  },
  {
    kind: 'a field of the wrong type',
    key: 'u1',
    value: json({ ...good('u1'), expectedVersion: '3' }),
    code: 'ENVELOPE_INVALID',
    message: /"expectedVersion" must be an integer of at least 0, got string "3"/,
  },
  // issue 14, defect 5: a serialised nullable expectedVersion turned optimistic concurrency off
  {
    kind: 'an expectedVersion of null',
    key: 'u1',
    value: json({ ...good('u1'), expectedVersion: null }),
    code: 'ENVELOPE_INVALID',
    message: /"expectedVersion" must be an integer of at least 0 \(leave the field out for no version check\), got null/,
  },
  // issue 14, defect 6: "yesterday" became the events' timestamp, and state-as-of queries failed on it later
  { kind: 'a timestamp that is not a time', key: 'u1', value: json({ ...good('u1'), timestamp: 'yesterday' }), code: 'ENVELOPE_INVALID', message: /"timestamp" must be an ISO-8601 date-time with an offset.*got string "yesterday"/ },
  { kind: 'a timestamp on a day that does not exist', key: 'u1', value: json({ ...good('u1'), timestamp: '2026-02-30T10:00:00Z' }), code: 'ENVELOPE_INVALID', message: /"timestamp" must be an ISO-8601 date-time/ },
  { kind: 'a timestamp without an offset', key: 'u1', value: json({ ...good('u1'), timestamp: '2026-02-03T10:00:00' }), code: 'ENVELOPE_INVALID', message: /"timestamp" must be an ISO-8601 date-time/ },
  { kind: 'a timestamp that is a number', key: 'u1', value: json({ ...good('u1'), timestamp: 1767225600000 }), code: 'ENVELOPE_INVALID', message: /"timestamp" must be an ISO-8601 date-time.*got number 1767225600000/ },
  { kind: 'a null key', key: null, value: json(good('u1')), code: 'KEY_MISSING', message: /null key/ },
  { kind: 'a key that is not the aggregate id', key: 'u2', value: json(good('u1')), code: 'KEY_MISMATCH', message: /record key "u2" differs from "u1", the aggregateId of the command/ },
  { kind: 'an oversize record', key: 'u1', value: json({ ...good('u1'), data: { email: 'a@x', blob: 'x'.repeat(1_100_000) } }), code: 'RECORD_TOO_LARGE', message: /bytes; processing.maxRecordBytes is 1048576/ },
];

for (const bad of badCommands) {
  test(`a command with ${bad.kind} goes to the aggregate's DLQ as ${bad.code} with its bytes and headers, and the next command is processed`, async (t) => {
    const d = await TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
    await d.pipe('commands', bad.key, bad.value, { raw: true, headers: { 'trace-id': 't-1' }, partition: 5 });
    await d.pipe('commands', 'u9', good('u9'));
    const dlq = d.deadLetters('users');
    t.is(dlq.length, 1);
    const r = dlq[0]!;
    t.like(r, { topic: 'user-service-users-dlq', partition: 5, key: bad.key });
    t.like(r.headers, {
      'foldstream.error.code': bad.code,
      'foldstream.source.topic': 'user-commands',
      'foldstream.source.partition': '5',
      'foldstream.source.offset': '0',
      'foldstream.processor': 'users',
      'trace-id': 't-1',
    });
    t.regex(r.headers['foldstream.error.message']!, bad.message);
    // the DLQ topic's codec is raw: the value is the original bytes
    t.true(Buffer.isBuffer(r.value) && r.value.equals(bad.value));
    t.deepEqual(d.output<{ status: string }>('replies').map((x) => x.value.status), ['accepted']);
    t.is(d.output('events').length, 1);
  });
}

const event = (id: string, v = 1) => ({
  eventId: `e-${id}-${v}`,
  eventType: 'UserCreated',
  eventVersion: 2,
  aggregateType: 'User',
  aggregateId: id,
  aggregateVersion: v,
  timestamp: '2026-01-01T00:00:00.000Z',
  data: { email: `${id}@x.example`, fullName: id, status: 'ACTIVE' },
});

const badEvents: Bad[] = [
  { kind: 'undecodable bytes', key: 'u1', value: Buffer.from('not json'), code: 'DESERIALIZATION_FAILED', message: /^value is not JSON/ },
  {
    kind: 'missing envelope fields',
    key: 'u1',
    value: json({ ...event('u1'), aggregateVersion: undefined, eventId: undefined }),
    code: 'ENVELOPE_INVALID',
    message: /^event envelope: missing field "eventId"; missing field "aggregateVersion"$/,
  },
  { kind: 'a version of 0', key: 'u1', value: json({ ...event('u1'), aggregateVersion: 0 }), code: 'ENVELOPE_INVALID', message: /"aggregateVersion" must be an integer of at least 1, got number 0/ },
  {
    kind: 'a version too large for a number (JSON 1e400)',
    key: 'u1',
    value: Buffer.from(JSON.stringify(event('u1')).replace(/"aggregateVersion":\d+/, '"aggregateVersion":1e400')),
    code: 'ENVELOPE_INVALID',
    message: /"aggregateVersion" must be an integer of at least 1, got number Infinity/,
  },
  { kind: 'data that is not an object', key: 'u1', value: json({ ...event('u1'), data: 'x' }), code: 'ENVELOPE_INVALID', message: /"data" must be an object, got string "x"/ },
  { kind: 'a null key', key: null, value: json(event('u1')), code: 'KEY_MISSING', message: /null key/ },
  { kind: 'a key that is not the aggregate id', key: 'someone-else', value: json(event('u1')), code: 'KEY_MISMATCH', message: /record key "someone-else" differs from "u1", the aggregateId of its envelope/ },
  { kind: 'a key that lacks the tenant', key: 'u1', value: json({ ...event('u1'), tenantId: 'acme' }), code: 'KEY_MISMATCH', message: /differs from "acme:u1", the tenantId:aggregateId/ },
];

for (const bad of badEvents) {
  test(`an event with ${bad.kind} goes to the projection's DLQ as ${bad.code}, and the next event is processed`, async (t) => {
    const d = await TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
    await d.pipe('events', bad.key, bad.value, { raw: true, partition: 2 });
    await d.pipe('events', 'u9', event('u9'));
    const dlq = d.deadLetters('user-view');
    t.deepEqual(dlq.map((r) => r.headers['foldstream.error.code']), [bad.code]);
    t.regex(dlq[0]!.headers['foldstream.error.message']!, bad.message);
    t.like(dlq[0]!.headers, { 'foldstream.source.topic': 'events', 'foldstream.source.partition': '2', 'foldstream.processor': 'user-view' });
    t.true(Buffer.isBuffer(dlq[0]!.value) && dlq[0]!.value.equals(bad.value));
    t.deepEqual(d.output('user-view').map((r) => r.key), ['u9']);
  });
}

test('a tombstone on the events topic is not an event: it goes to the DLQ and does not delete a view', async (t) => {
  const d = await TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
  await d.pipe('events', 'u1', event('u1'));
  await d.pipe('events', 'u1', null);
  t.deepEqual(d.deadLetters('user-view').map((r) => [r.headers['foldstream.error.code'], r.headers['foldstream.error.message']]), [
    ['ENVELOPE_INVALID', 'event envelope must be an object, got null'],
  ]);
  t.is(d.output('user-view').length, 1);
});
