// An aggregate remembers commandIds for commandRetentionMs of stream time: within it a retry gets its first reply;
// after it the entry is gone (the commands store does not grow forever) and the same commandId is a new command.
import test from 'ava';
import { join } from 'node:path';
import type { Reply } from '../../src/serde/envelope.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { ROOT } from '../helpers/cli.ts';

const topology = (retention: number) => `app: retention
kafka: { brokers: "127.0.0.1:9092" }
modules: { root: ${ROOT} }
topics:
  commands: { name: r-commands, partitions: 1 }
  events: { name: r-events, partitions: 1 }
  replies: { name: r-replies, partitions: 1 }
processors:
  - name: users
    type: aggregate
    aggregateType: User
    input: commands
    output: { events: events, replies: replies }
    module: ${join(ROOT, 'examples/users/user.ts')}
    commandRetentionMs: ${retention}
`;

const MINUTE = 60_000;
const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const create = { commandId: 'c1', commandType: 'CreateUser', aggregateId: 'u1', data: { email: 'ann@example.com' } };
const replies = (d: TopologyTestDriver) => d.output<Reply>('replies').map((r) => r.value.status);

test('within the retention a repeated commandId gets its first reply; after it the id is forgotten and the store shrinks', async (t) => {
  const d = await TopologyTestDriver.fromYaml(topology(10 * MINUTE), ROOT, { wallClock: T0 });
  await d.pipe('commands', 'u1', create, { timestamp: T0 });
  await d.advanceWallClock(5 * MINUTE);
  await d.pipe('commands', 'u1', create, { timestamp: T0 + 5 * MINUTE });
  t.deepEqual(replies(d), ['accepted', 'accepted'], 'the retry within the retention is answered with the first reply');
  t.deepEqual([...(await d.store('users', 'commands')).keys()], ['["u1","c1"]']);
  t.is((await d.store('users', 'command-expiry')).size, 1);

  // both clocks move past T0 + retention (stream time with another aggregate's command): the expiry punctuation deletes c1
  await d.advanceWallClock(7 * MINUTE);
  await d.pipe('commands', 'u2', { ...create, commandId: 'c2', aggregateId: 'u2' }, { timestamp: T0 + 12 * MINUTE });
  t.deepEqual([...(await d.store('users', 'commands')).keys()], ['["u2","c2"]']);
  t.deepEqual([...(await d.store<{ key: string }>('users', 'command-expiry')).values()].map((v) => v.key), ['["u2","c2"]']);
  t.is(d.metric('users', 'command_outcomes', { outcome: 'expired' }), 1);

  // c1 again: no longer a duplicate, so the decider sees it, and u1 exists already
  await d.pipe('commands', 'u1', create, { timestamp: T0 + 13 * MINUTE });
  t.deepEqual(replies(d), ['accepted', 'accepted', 'accepted', 'rejected']);
  await d.close();
});

const upgrade = (commandId: string, aggregateId = 'u1', status = 'GOLD') => ({ commandId, commandType: 'UpgradeStatus', aggregateId, data: { status } });
const YEAR = 365 * 24 * 60 * MINUTE;

// issue 14, defect 1: retention ran on stream time alone, so one record dated years ahead deleted every remembered
// commandId of its partition, and the retry of a deposit was accepted a second time
test('a record dated years ahead of the wall clock does not make the partition forget its commandIds', async (t) => {
  const d = await TopologyTestDriver.fromYaml(topology(10 * MINUTE), ROOT, { wallClock: T0 });
  await d.pipe('commands', 'u1', create, { timestamp: T0 });
  await d.pipe('commands', 'u2', { ...create, commandId: 'c2', aggregateId: 'u2' }, { timestamp: T0 + 4 * YEAR });
  await d.advanceWallClock(MINUTE);
  await d.pipe('commands', 'u1', create, { timestamp: T0 + MINUTE });
  t.deepEqual(replies(d), ['accepted', 'accepted', 'accepted'], 'the retry gets its first reply, not a rejection from a second run');
  t.deepEqual(d.output<Reply>('replies')[2]!.value, d.output<Reply>('replies')[0]!.value);
  t.is(d.metric('users', 'command_outcomes', { outcome: 'expired' }), 0);

  // stream time stays years ahead, so no record moves it: the wall clock expires what is old by both clocks
  await d.advanceWallClock(11 * MINUTE);
  t.deepEqual([...(await d.store('users', 'commands')).keys()], []);
  t.is(d.metric('users', 'command_outcomes', { outcome: 'expired' }), 2);
  await d.close();
});

test('a record dated years back is remembered for the retention after it was handled, also as the first record of a task', async (t) => {
  const d = await TopologyTestDriver.fromYaml(topology(10 * MINUTE), ROOT, { wallClock: T0 });
  // the first record the task sees sets its stream time years back; the next one moves it to now
  await d.pipe('commands', 'u1', create, { timestamp: T0 - 3 * YEAR });
  await d.pipe('commands', 'u1', upgrade('c2', 'u1', 'SILVER'), { timestamp: T0 });
  // and one dated years back in a partition whose stream time is now
  await d.pipe('commands', 'u1', upgrade('c3'), { timestamp: T0 - 2 * YEAR });
  await d.advanceWallClock(MINUTE);
  await d.pipe('commands', 'u2', { ...create, commandId: 'c4', aggregateId: 'u2' }, { timestamp: T0 + 2 * MINUTE });
  await d.pipe('commands', 'u1', create, { timestamp: T0 + 2 * MINUTE });
  await d.pipe('commands', 'u1', upgrade('c3'), { timestamp: T0 + 2 * MINUTE });
  t.deepEqual(replies(d), ['accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'accepted'], 'both retries get their first replies');
  t.is(d.metric('users', 'command_outcomes', { outcome: 'duplicate' }), 2);
  t.is(d.output('events').length, 4, 'UserCreated u1, StatusUpgraded u1 twice, UserCreated u2: nothing ran twice');

  // once both clocks are past the retention, they go
  await d.advanceWallClock(10 * MINUTE);
  await d.pipe('commands', 'u2', upgrade('c5', 'u2'), { timestamp: T0 + 12 * MINUTE });
  t.deepEqual([...(await d.store('users', 'commands')).keys()], ['["u2","c4"]', '["u2","c5"]']);
  await d.close();
});

test('with commandRetentionMs 0 commandIds are remembered forever and no expiry store exists', async (t) => {
  const d = await TopologyTestDriver.fromYaml(topology(0), ROOT);
  await d.pipe('commands', 'u1', create, { timestamp: T0 });
  await d.pipe('commands', 'u2', { ...create, commandId: 'c2', aggregateId: 'u2' }, { timestamp: T0 + 365 * 24 * 60 * MINUTE });
  await d.pipe('commands', 'u1', create, { timestamp: T0 + 366 * 24 * 60 * MINUTE });
  t.deepEqual(replies(d), ['accepted', 'accepted', 'accepted']);
  await t.throwsAsync(d.store('users', 'command-expiry'), { message: /no store "command-expiry"/ });
  await d.close();
});
