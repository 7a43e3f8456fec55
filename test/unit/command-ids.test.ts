// commandIds are per aggregate (issue 14, defect 2): they were remembered per partition, so a commandId used by one
// aggregate made the same id on another aggregate of the same partition get the first aggregate's reply (and do
// nothing), while on an aggregate in another partition it was processed. A retry of a command gets its first reply;
// another command under an id the aggregate has used is COMMAND_ID_REUSED; stores of the old layout still answer.
import test from 'ava';
import { join } from 'node:path';
import type { EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { ROOT } from '../helpers/cli.ts';

const users = () => TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
const create = (aggregateId: string, commandId: string, email = `${aggregateId}@example.com`) => ({ commandId, commandType: 'CreateUser', aggregateId, data: { email, fullName: 'N' } });
const replies = (d: TopologyTestDriver) => d.output<Reply>('replies').map((r) => r.value);
const events = (d: TopologyTestDriver) => d.output<EventEnvelope>('events').map((r) => r.value);

// u0 and u7 share partition 2 of the 12; u1 is in partition 4
test('the same commandId on two aggregates of one partition is two commands, each answered for its own aggregate', async (t) => {
  t.is(partitionForKey('u0', 12), partitionForKey('u7', 12));
  t.not(partitionForKey('u0', 12), partitionForKey('u1', 12));
  const d = await users();
  await d.pipe('commands', 'u0', create('u0', 'deposit-1'));
  await d.pipe('commands', 'u7', create('u7', 'deposit-1'));
  await d.pipe('commands', 'u1', create('u1', 'deposit-1'));
  const [a, b, c] = replies(d);
  t.like(a, { commandId: 'deposit-1', status: 'accepted', aggregateId: 'u0', aggregateVersion: 1 });
  t.like(b, { commandId: 'deposit-1', status: 'accepted', aggregateId: 'u7', aggregateVersion: 1 }, "u7's own reply, not u0's");
  t.like(c, { commandId: 'deposit-1', status: 'accepted', aggregateId: 'u1', aggregateVersion: 1 });
  t.deepEqual(b!.eventIds, [events(d)[1]!.eventId]);
  t.deepEqual(events(d).map((e) => e.aggregateId), ['u0', 'u7', 'u1']);
  t.deepEqual([...(await d.store('users', 'state')).keys()], ['u0', 'u1', 'u7']);
  // and each aggregate's retry gets its own first reply
  await d.pipe('commands', 'u7', create('u7', 'deposit-1'));
  t.deepEqual(replies(d)[3], b);
  t.is(d.metric('users', 'command_outcomes', { outcome: 'duplicate' }), 1);
});

test('a retry is the same command even with its data keys in another order and another timestamp, userId and correlationId', async (t) => {
  const d = await users();
  await d.pipe('commands', 'u0', create('u0', 'c1'));
  await d.pipe('commands', 'u0', {
    commandId: 'c1',
    commandType: 'CreateUser',
    aggregateId: 'u0',
    data: { fullName: 'N', email: 'u0@example.com' },
    timestamp: '2026-01-01T00:00:05.000Z',
    userId: 'retrying-client',
    correlationId: 'another',
  });
  const [first, retry] = replies(d);
  t.deepEqual(retry, first);
  t.is(events(d).length, 1);
});

test('another command under a commandId the aggregate has used is rejected as COMMAND_ID_REUSED, and the first command keeps its reply', async (t) => {
  const d = await users();
  await d.pipe('commands', 'u0', create('u0', 'c1'));
  await d.pipe('commands', 'u0', { commandId: 'c1', commandType: 'UpgradeStatus', aggregateId: 'u0', data: { status: 'GOLD' } });
  await d.pipe('commands', 'u0', create('u0', 'c1', 'other@example.com'));
  await d.pipe('commands', 'u0', create('u0', 'c1'));
  const [first, otherType, otherData, retry] = replies(d);
  for (const r of [otherType, otherData]) {
    t.like(r, { commandId: 'c1', status: 'rejected', code: 'COMMAND_ID_REUSED', aggregateId: 'u0', aggregateVersion: 1, eventIds: [] });
    t.regex(r!.reason!, /^commandId "c1" was already used for another command to this aggregate \(a different commandType or data\), answered accepted at version 1: send a new command with a new commandId$/);
  }
  t.deepEqual(retry, first);
  t.deepEqual(events(d).map((e) => e.eventType), ['UserCreated']);
  t.is(d.metric('users', 'command_outcomes', { outcome: 'reused' }), 2);
  t.is(d.metric('users', 'command_outcomes', { outcome: 'duplicate' }), 1);
});

test('a store of the old layout (replies keyed by the bare commandId) answers its own aggregate and no other', async (t) => {
  const d = await users();
  const [created] = await d.appendEvents('users', 'u0', [{ type: 'UserCreated', eventVersion: 2, data: { email: 'u0@example.com', fullName: 'N', status: 'ACTIVE' } }]);
  const old: Reply = { commandId: 'old-1', status: 'accepted', aggregateId: 'u0', aggregateVersion: 1, eventIds: [created!.eventId] };
  await d.seedStore('users', 'commands', 'old-1', old, partitionForKey('u0', 12));
  // an entry whose last event is not this aggregate's (another tenant's u7, say) is not its own
  await d.seedStore('users', 'commands', 'old-2', { ...old, commandId: 'old-2', aggregateId: 'u7' }, partitionForKey('u7', 12));
  const mark = d.mark();
  await d.pipe('commands', 'u0', create('u0', 'old-1'));
  await d.pipe('commands', 'u7', create('u7', 'old-1'));
  await d.pipe('commands', 'u7', create('u7', 'old-2'));
  const [retry, other, notOwn] = d.output<Reply>('replies', { since: mark }).map((r) => r.value);
  t.deepEqual(retry, old, 'the old entry answers a retry to its aggregate');
  t.like(other, { commandId: 'old-1', status: 'accepted', aggregateId: 'u7', aggregateVersion: 1 });
  t.like(notOwn, { commandId: 'old-2', status: 'rejected', code: 'USER_EXISTS', aggregateId: 'u7' });
  t.deepEqual(events(d).map((e) => e.aggregateId), ['u0', 'u7']);
});
