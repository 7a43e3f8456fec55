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
  const d = await TopologyTestDriver.fromYaml(topology(10 * MINUTE), ROOT);
  await d.pipe('commands', 'u1', create, { timestamp: T0 });
  await d.pipe('commands', 'u1', create, { timestamp: T0 + 5 * MINUTE });
  t.deepEqual(replies(d), ['accepted', 'accepted'], 'the retry within the retention is answered with the first reply');
  t.deepEqual([...(await d.store('users', 'commands')).keys()], ['c1']);
  t.is((await d.store('users', 'command-expiry')).size, 1);

  // stream time moves past T0 + retention (another aggregate's command): the expiry punctuation deletes c1
  await d.pipe('commands', 'u2', { ...create, commandId: 'c2', aggregateId: 'u2' }, { timestamp: T0 + 12 * MINUTE });
  t.deepEqual([...(await d.store('users', 'commands')).keys()], ['c2']);
  t.deepEqual([...(await d.store('users', 'command-expiry')).values()], ['c2']);
  t.is(d.metric('users', 'command_outcomes', { outcome: 'expired' }), 1);

  // c1 again: no longer a duplicate, so the decider sees it, and u1 exists already
  await d.pipe('commands', 'u1', create, { timestamp: T0 + 13 * MINUTE });
  t.deepEqual(replies(d), ['accepted', 'accepted', 'accepted', 'rejected']);
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
