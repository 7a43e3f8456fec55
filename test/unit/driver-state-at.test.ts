// "State as of a time" with no broker (issue 14, docs): TopologyTestDriver.stateAt rebuilds an aggregate's state from
// its events as `foldstream state-at` and `?at=` do — events at or before the time, in version order, upcast, through
// the decider's own evolve — and a YAML case checks it with `then.stateAt` (examples/orders/orders.test.yaml).
import test from 'ava';
import { join } from 'node:path';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { FIXTURES, ROOT } from '../helpers/cli.ts';

const T0 = Date.parse('2026-03-01T09:00:00Z');
const T1 = Date.parse('2026-03-01T10:00:00Z');

test('stateAt gives the state after the last event at or before the time, counting the later ones', async (t) => {
  const d = await TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
  await d.pipeCommand({ commandType: 'CreateUser', aggregateId: 'u1', data: { email: 'ann@x.example' } }, { timestamp: T0 });
  await d.pipeCommand({ commandType: 'UpgradeStatus', aggregateId: 'u1', data: { status: 'GOLD' } }, { timestamp: T1 });
  t.like(await d.stateAt('users', 'u1', T0 - 1), { version: 0, state: undefined, lastEventAt: null, laterEvents: 2 });
  t.like(await d.stateAt('users', 'u1', '2026-03-01T09:30:00Z'), { version: 1, state: { status: 'ACTIVE' }, lastEventAt: '2026-03-01T09:00:00.000Z', laterEvents: 1 });
  t.like(await d.stateAt('users', 'u1', T1), { version: 2, state: { status: 'GOLD' }, laterEvents: 0 });
  t.like(await d.stateAt('users', 'u1'), { version: 2 }, 'no time: now');
  t.deepEqual((await d.stateAt('users', 'u1')).state, (await d.store<{ state: unknown }>('users', 'state')).get('u1')!.state, 'as of now it is the stored state');
  await t.throwsAsync(d.stateAt('user-view', 'u1'), { message: 'processor "user-view" is not an aggregate' });
  await t.throwsAsync(d.stateAt('users', 'u1', 'yesterday'), { message: /"yesterday" is not a time/ });
});

test('stateAt lifts legacy history through the upcasters, as state-at does', async (t) => {
  const d = await TopologyTestDriver.fromObject(
    {
      app: 'bank',
      kafka: { brokers: '127.0.0.1:9092' },
      topics: { commands: { name: 'bank-commands', partitions: 2 }, events: { name: 'bank-events', partitions: 2 } },
      upcasters: [{ eventType: 'Deposited', fromVersion: 1, toVersion: 2, rename: { amt: 'amount' } }],
      processors: [{ name: 'accounts', type: 'aggregate', aggregateType: 'Account', input: 'commands', output: { events: 'events' }, module: './modules/ledger.ts' }],
    },
    FIXTURES,
  );
  await d.appendEvents('accounts', 'a1', [{ type: 'Deposited', eventVersion: 1, data: { amt: 100 } }], { timestamp: T0 });
  await d.appendEvents('accounts', 'a1', [{ type: 'Deposited', eventVersion: 2, data: { amount: 5 } }], { timestamp: T1 });
  const r = await d.stateAt('accounts', 'a1', T0);
  t.like(r, { version: 1, state: { balance: 100 }, laterEvents: 1 });
  t.like(r.events[0], { eventVersion: 2, data: { amount: 100 } });
  t.like(await d.stateAt('accounts', 'a1', T1), { version: 2, state: { balance: 105 } });
});
