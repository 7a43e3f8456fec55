// Selective replay, the projection's side (processors/projection/replay.ts), through the TopologyTestDriver on the
// users example: a begin / copied events / end sequence on the replay topic rebuilds one view from scratch beside the
// live one and swaps it in; a view whose aggregate moved on meanwhile is left as it is (stale); other views are not
// touched; a second replay gives the same view; group counts follow a rebuilt view's move.
import test from 'ava';
import { join } from 'node:path';
import { REPLAY_HEADERS } from '../../src/processors/projection/replay.ts';
import type { EventEnvelope } from '../../src/serde/envelope.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { ROOT } from '../helpers/cli.ts';
import { memoryLogger } from '../helpers/log.ts';

const REPLAY = 'user-service-user-view-replay';
const GROUP_REPLAY = 'user-service-users-by-status-replay';

function event(eventType: string, aggregateId: string, aggregateVersion: number, data: Record<string, unknown>): EventEnvelope {
  return {
    eventId: `${aggregateId}-${aggregateVersion}`,
    eventType,
    eventVersion: eventType === 'UserCreated' ? 2 : 1,
    aggregateType: 'User',
    aggregateId,
    aggregateVersion,
    timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, aggregateVersion)).toISOString(),
    data,
  };
}

const created = (id: string) => event('UserCreated', id, 1, { email: `${id}@x.io`, fullName: id.toUpperCase(), status: 'ACTIVE' });
const emailChanged = (id: string, v: number) => event('EmailChanged', id, v, { newEmail: `${id}-${v}@x.io` });
const upgraded = (id: string, v: number, status: string) => event('StatusUpgraded', id, v, { status });

async function driver() {
  return TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'), { log: memoryLogger() });
}

async function replay(d: TopologyTestDriver, topic: string, id: string, key: string, events: EventEnvelope[], upTo = events.at(-1)?.aggregateVersion ?? 0) {
  await d.pipe(topic, key, null, { raw: true, headers: { [REPLAY_HEADERS.control]: 'begin', [REPLAY_HEADERS.id]: id } });
  for (const e of events) await d.pipe(topic, key, e, { headers: { [REPLAY_HEADERS.id]: id } });
  await d.pipe(topic, key, null, { raw: true, headers: { [REPLAY_HEADERS.control]: 'end', [REPLAY_HEADERS.id]: id, [REPLAY_HEADERS.upTo]: String(upTo) } });
}

const results = (d: TopologyTestDriver, topic: string, since?: number) =>
  d.output(topic, since === undefined ? {} : { since }).filter((r) => r.headers[REPLAY_HEADERS.control] === 'result').map((r) => [r.key, r.headers[REPLAY_HEADERS.outcome], r.headers[REPLAY_HEADERS.version]]);

test('a replay rebuilds the named view from its events and swaps it in; the other views are not written', async (t) => {
  const d = await driver();
  for (const e of [created('u1'), emailChanged('u1', 2), created('u2')]) await d.pipeEvent(e);
  const good = (await d.store<{ view: unknown; version: number }>('user-view', 'view')).get('u1')!;
  // a bug had left u1's view wrong
  await d.seedStore('user-view', 'view', 'u1', { view: { id: 'u1', email: 'wrong' }, version: 2 });
  const mark = d.mark();
  await replay(d, REPLAY, 'r1', 'u1', [created('u1'), emailChanged('u1', 2)]);
  const views = await d.store<{ view: unknown; version: number; replay?: unknown }>('user-view', 'view');
  t.deepEqual(views.get('u1'), good, 'rebuilt: as if the events had been applied once each');
  t.deepEqual(d.output('user-view', { since: mark }).map((r) => [r.key, r.value, r.headers['foldstream.view.version']]), [['u1', good.view, '2']], 'only the named view is written');
  t.deepEqual(results(d, REPLAY, mark), [['u1', 'rebuilt', '2']]);

  // the same replay again: the same view
  await replay(d, REPLAY, 'r2', 'u1', [created('u1'), emailChanged('u1', 2)]);
  t.deepEqual((await d.store('user-view', 'view')).get('u1'), good);
  t.is(d.metric('user-view', 'projection_events', { outcome: 'replay_rebuilt' }), 2);
  await d.close();
});

test('live events keep updating the live view during a rebuild; a rebuild that misses a live event is stale and changes nothing', async (t) => {
  const d = await driver();
  for (const e of [created('u1'), emailChanged('u1', 2)]) await d.pipeEvent(e);
  const mark = d.mark();
  await d.pipe(REPLAY, 'u1', null, { raw: true, headers: { [REPLAY_HEADERS.control]: 'begin', [REPLAY_HEADERS.id]: 'r1' } });
  await d.pipe(REPLAY, 'u1', created('u1'), { headers: { [REPLAY_HEADERS.id]: 'r1' } });
  // a live event while the shadow is being built: the live view serves it at once
  await d.pipeEvent(emailChanged('u1', 3));
  const live = (await d.store<{ view: { email: string }; version: number }>('user-view', 'view')).get('u1')!;
  t.is(live.view.email, 'u1-3@x.io');
  t.is(live.version, 3);
  await d.pipe(REPLAY, 'u1', emailChanged('u1', 2), { headers: { [REPLAY_HEADERS.id]: 'r1' } });
  await d.pipe(REPLAY, 'u1', null, { raw: true, headers: { [REPLAY_HEADERS.control]: 'end', [REPLAY_HEADERS.id]: 'r1', [REPLAY_HEADERS.upTo]: '2' } });
  const after = (await d.store<{ view: unknown; version: number; replay?: unknown }>('user-view', 'view')).get('u1')!;
  t.deepEqual(after, { view: live.view, version: 3 }, 'stale: the live view stays, the shadow is dropped');
  t.deepEqual(results(d, REPLAY, mark), [['u1', 'stale', '3']]);
  await d.close();
});

test('a rebuild ahead of the live view: the events it already covers are skipped when they arrive', async (t) => {
  const d = await driver();
  await d.pipeEvent(created('u1'));
  // the command read up to version 2, which the live view has not reached yet
  await replay(d, REPLAY, 'r1', 'u1', [created('u1'), emailChanged('u1', 2)]);
  t.is((await d.store<{ version: number }>('user-view', 'view')).get('u1')!.version, 2);
  await d.pipeEvent(emailChanged('u1', 2));
  t.is(d.metric('user-view', 'projection_events', { outcome: 'already_applied' }), 1);
  const v = (await d.store<{ view: { emailChanges: number } }>('user-view', 'view')).get('u1')!;
  t.is(v.view.emailChanges, 1, 'the email change counted once');
  await d.close();
});

test('an end without its begin is an orphan; malformed control records are dead-lettered', async (t) => {
  const d = await driver();
  await d.pipeEvent(created('u1'));
  const mark = d.mark();
  await d.pipe(REPLAY, 'u1', null, { raw: true, headers: { [REPLAY_HEADERS.control]: 'end', [REPLAY_HEADERS.id]: 'nope', [REPLAY_HEADERS.upTo]: '1' } });
  t.deepEqual(results(d, REPLAY, mark), [['u1', 'orphan', '1']]);
  await d.pipe(REPLAY, 'u1', null, { raw: true, headers: { [REPLAY_HEADERS.control]: 'end', [REPLAY_HEADERS.id]: 'x' } });
  await d.pipe(REPLAY, 'u1', null, { raw: true, headers: { [REPLAY_HEADERS.control]: 'begin' } });
  t.deepEqual(
    d.deadLetters('user-view').map((l) => l.code),
    ['ENVELOPE_INVALID', 'ENVELOPE_INVALID'],
  );
  // a copied event is checked like a live one
  await d.pipe(REPLAY, 'u1', { not: 'an event' }, { headers: { [REPLAY_HEADERS.id]: 'x' } });
  t.is(d.deadLetters('user-view').length, 3);
  t.deepEqual((await d.store('user-view', 'view')).get('u1'), { view: (await d.store<{ view: unknown }>('user-view', 'view')).get('u1')!.view, version: 1 });
  await d.close();
});

test('with groupBy, a rebuilt view that changes group moves its count in the same transaction', async (t) => {
  const d = await driver();
  for (const e of [created('u1'), upgraded('u1', 2, 'GOLD'), created('u2')]) await d.pipeEvent(e);
  t.deepEqual([...(await d.store<{ members: number }>('users-by-status-group', 'groups'))].map(([k, g]) => [k, g.members]), [['ACTIVE', 1], ['GOLD', 1]]);
  // a bug had counted u1 as ACTIVE
  await d.seedStore('users-by-status', 'view', 'u1', { view: { status: 'ACTIVE' }, version: 2, group: { key: 'ACTIVE', sums: {} } });
  await d.seedStore('users-by-status-group', 'groups', 'ACTIVE', { view: { key: 'ACTIVE', count: 2 }, members: 2, version: 9 });
  await d.seedStore('users-by-status-group', 'groups', 'GOLD', { view: null, members: 0, version: 9 });
  await replay(d, GROUP_REPLAY, 'r1', 'u1', [created('u1'), upgraded('u1', 2, 'GOLD')]);
  t.deepEqual([...(await d.store<{ members: number }>('users-by-status-group', 'groups'))].map(([k, g]) => [k, g.members]), [['ACTIVE', 1], ['GOLD', 1]]);
  t.deepEqual(d.latest('users-by-status').get('GOLD'), { key: 'GOLD', count: 1 });
  await d.close();
});
