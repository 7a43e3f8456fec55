// groupBy with no broker: the per-aggregate stage, the repartition topic and the group stage, run end to end by
// the TopologyTestDriver (which delivers the repartition records to the group stage as the broker would).
import test from 'ava';
import { join } from 'node:path';
import type { EventEnvelope } from '../../src/serde/envelope.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { FIXTURES, ROOT } from '../helpers/cli.ts';
import { command, randomCommands, UserModel } from '../helpers/user-model.ts';

const latest = (records: { key: string | null; value: unknown }[]) => {
  const out: Record<string, unknown> = {};
  for (const r of records) {
    if (r.value === null) delete out[r.key!];
    else out[r.key!] = r.value;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
};

test('users-by-status: an upgrade leaves the old status group (count - 1) and joins the new one (count + 1); an emptied group is a tombstone', async (t) => {
  const d = await TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
  const send = (type: string, id: string, data: Record<string, unknown>) => d.pipe('commands', id, command(type, id, data));
  await send('CreateUser', 'u1', { email: 'a@x.example' });
  await send('CreateUser', 'u2', { email: 'b@x.example' });
  t.deepEqual(latest(d.output('users-by-status')), { ACTIVE: { key: 'ACTIVE', count: 2 } });
  d.readOutput('users-by-status');
  await send('UpgradeStatus', 'u1', { status: 'GOLD' });
  t.deepEqual(
    d.readOutput('users-by-status').map((r) => [r.key, r.value]),
    [
      ['ACTIVE', { key: 'ACTIVE', count: 1 }],
      ['GOLD', { key: 'GOLD', count: 1 }],
    ],
  );
  // the repartition topic carried exactly that: -1 for ACTIVE, +1 for GOLD, keyed by group
  t.deepEqual(
    d.output('user-service-users-by-status-repartition').slice(-2).map((r) => [r.key, r.value]),
    [
      ['ACTIVE', { source: 'u1', members: -1, sums: {} }],
      ['GOLD', { source: 'u1', members: 1, sums: {} }],
    ],
  );
  await send('UpgradeStatus', 'u2', { status: 'VIP' });
  const last = d.readOutput('users-by-status');
  t.deepEqual(last.map((r) => [r.key, r.value]), [['ACTIVE', null], ['VIP', { key: 'VIP', count: 1 }]]);
  // an email change does not touch the statistics: no repartition record, nothing written
  const before = d.output('user-service-users-by-status-repartition').length;
  await send('UpdateEmail', 'u2', { email: 'new@x.example' });
  t.is(d.output('user-service-users-by-status-repartition').length, before);
  t.deepEqual(d.output('users-by-status'), []);
  t.is(d.metric('users-by-status', 'projection_events', { outcome: 'unknown_type' }), 1);
  // the emptied group keeps its version, and the per-user views remember their group
  t.like((await d.store('users-by-status-group', 'groups')).get('ACTIVE'), { view: null, members: 0, version: 4 });
  // EmailChanged has no rule here, so the view's version stays at the StatusUpgraded it last applied
  t.deepEqual((await d.store('users-by-status', 'view')).get('u2'), { view: { status: 'VIP' }, version: 2, group: { key: 'VIP', sums: {} } });
});

test('users-by-status equals a model of the commands after hundreds of random commands on 12 partitions', async (t) => {
  const d = await TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
  const model = new UserModel();
  for (const c of randomCommands(1500, 300, 21)) {
    model.apply(c);
    await d.pipe('commands', c.aggregateId, c);
  }
  const expected = Object.fromEntries(Object.entries(model.byStatus()).map(([s, count]) => [s, { key: s, count }]));
  t.true(Object.keys(expected).length >= 3);
  t.deepEqual(latest(d.output('users-by-status')), expected);
  const groups = await d.store<{ view: unknown }>('users-by-status-group', 'groups');
  t.deepEqual(Object.fromEntries([...groups].filter(([, g]) => g.view !== null).map(([k, g]) => [k, g.view])), expected);
  // the statistics were spread over several partitions of the repartition topic
  t.true(new Set(d.output('user-service-users-by-status-repartition').map((r) => r.partition)).size >= 3);
});

const sums = `app: shop
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: shop-events, partitions: 4 }
  by-region: { name: shop-by-region, partitions: 4, config: { cleanup.policy: compact } }
processors:
  - name: by-region
    type: projection
    input: events
    output: by-region
    on:
      StoreOpened: { set: { region: data.region, revenue: "0" } }
      SaleRecorded: { increment: { revenue: data.amount } }
      StoreMoved: { set: { region: data.region } }
      StoreClosed: { delete: true }
    groupBy:
      key: region
      aggregate: { stores: count, revenue: { sum: revenue } }
`;

test('groupBy sums follow a member that changes within its group, moves to another group, or is deleted', async (t) => {
  const d = await TopologyTestDriver.fromYaml(sums, FIXTURES);
  let n = 0;
  const pipe = (eventType: string, id: string, data: Record<string, unknown>, v: number) => {
    const e: EventEnvelope = { eventId: `e${++n}`, eventType, eventVersion: 1, aggregateType: 'Store', aggregateId: id, aggregateVersion: v, timestamp: '2026-01-01T00:00:00.000Z', data };
    return d.pipe('events', id, e);
  };
  await pipe('StoreOpened', 's1', { region: 'north' }, 1);
  await pipe('StoreOpened', 's2', { region: 'north' }, 1);
  await pipe('SaleRecorded', 's1', { amount: 10 }, 2);
  await pipe('SaleRecorded', 's2', { amount: 5 }, 2);
  t.deepEqual(latest(d.output('by-region')), { north: { key: 'north', stores: 2, revenue: 15 } });
  await pipe('StoreMoved', 's1', { region: 'south' }, 3);
  t.deepEqual(latest(d.output('by-region')), { north: { key: 'north', stores: 1, revenue: 5 }, south: { key: 'south', stores: 1, revenue: 10 } });
  await pipe('SaleRecorded', 's1', { amount: 2.5 }, 4);
  // a change within the group is one record: a delta with no change of members
  t.deepEqual(d.output('shop-by-region-repartition').at(-1)!.value, { source: 's1', members: 0, sums: { revenue: 2.5 } });
  await pipe('StoreClosed', 's2', {}, 3);
  t.deepEqual(latest(d.output('by-region')), { south: { key: 'south', stores: 1, revenue: 12.5 } });
});

test('the group stage dead-letters a record on its repartition topic that is not a membership change', async (t) => {
  const d = await TopologyTestDriver.fromYaml(sums, FIXTURES);
  await d.pipe('shop-by-region-repartition', 'north', { source: 's9', members: 7, sums: {} });
  t.deepEqual(d.deadLetters('by-region-group').map((r) => r.headers['foldstream.error.code']), ['ENVELOPE_INVALID']);
  t.deepEqual(d.output('by-region'), []);
});

test('a group key that is not a string is written as a record key: numbers and booleans as text, objects as JSON; no value means no group', async (t) => {
  const yaml = (key: string) => sums.replace('key: region', `key: "${key}"`);
  const run = async (key: string, regions: unknown[]) => {
    const d = await TopologyTestDriver.fromYaml(yaml(key), FIXTURES);
    for (const [i, region] of regions.entries()) {
      const e: EventEnvelope = { eventId: `e${i}`, eventType: 'StoreOpened', eventVersion: 1, aggregateType: 'Store', aggregateId: `s${i}`, aggregateVersion: 1, timestamp: '2026-01-01T00:00:00.000Z', data: { region } };
      await d.pipe('events', `s${i}`, e);
    }
    return Object.keys(latest(d.output('by-region'))).sort();
  };
  t.deepEqual(await run('region', [7, 7, 12.5]), ['12.5', '7']);
  t.deepEqual(await run('region', [true, false]), ['false', 'true']);
  t.deepEqual(await run("{ 'zone': region, 'open': true }", ['n', 's']), ['{"zone":"n","open":true}', '{"zone":"s","open":true}']);
  // a store with no region (the path gives nothing) and one with a null region are in no group
  t.deepEqual(await run('region', ['n', null, undefined]), ['n']);
});
