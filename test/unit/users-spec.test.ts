// The users example as given/when/then specs (foldstream/testing): the User decider and the user-view and
// users-by-status projections, run through the topology with no broker.
import test from 'ava';
import { join } from 'node:path';
import { aggregateSpec, projectionSpec } from '../../src/testing/index.ts';
import { ROOT } from '../helpers/cli.ts';

const topology = join(ROOT, 'topology.yaml');
const users = aggregateSpec({ topology, processor: 'users', aggregateId: 'u1' });
const userView = projectionSpec({ topology, processor: 'user-view' });
const usersByStatus = projectionSpec({ topology, processor: 'users-by-status' });

const created = { type: 'UserCreated', eventVersion: 2, data: { email: 'ann@x.example', fullName: 'Ann', status: 'ACTIVE' } };

test('CreateUser on a new user emits UserCreated v2, ACTIVE', async (t) => {
  const o = await users.when({ commandType: 'CreateUser', data: { email: 'ann@x.example', fullName: 'Ann' } }).thenEvents([created]);
  t.like(o.reply, { status: 'accepted', aggregateVersion: 1 });
  t.deepEqual(o.reply?.eventIds, o.events.map((e) => e.eventId));
});

test('CreateUser for a user that exists is rejected with USER_EXISTS', async (t) => {
  const o = await users.given(created).when({ commandType: 'CreateUser', data: { email: 'bob@x.example' } }).thenRejected({ code: 'USER_EXISTS', reason: 'user u1 already exists' });
  t.deepEqual(o.events, [], 'a rejected command emits nothing');
});

test('UpdateEmail to the address the user has is accepted with no event', async (t) => {
  const o = await users.given(created).when({ commandType: 'UpdateEmail', expectedVersion: 1, data: { email: 'ann@x.example' } }).thenEvents([]);
  t.like(o.reply, { status: 'accepted', aggregateVersion: 1 });
});

test('UpdateEmail with a stale expectedVersion gets a conflict at the current version', async (t) => {
  const changed = { type: 'EmailChanged', data: { oldEmail: 'ann@x.example', newEmail: 'b@x.example' } };
  const o = await users.given(created, changed).when({ commandType: 'UpdateEmail', expectedVersion: 1, data: { email: 'c@x.example' } }).thenConflict({ aggregateVersion: 2 });
  t.deepEqual(o.events, []);
  t.like(o.state, { email: 'b@x.example' });
});

test('UpgradeStatus moves the user up and its state follows; a downgrade is rejected', async (t) => {
  await users
    .given(created)
    .when({ commandType: 'UpgradeStatus', data: { status: 'GOLD' } })
    .thenState({ exists: true, email: 'ann@x.example', fullName: 'Ann', status: 'GOLD' });
  const gold = { type: 'StatusUpgraded', data: { oldStatus: 'ACTIVE', status: 'GOLD' } };
  const o = await users.given([created, gold]).when({ commandType: 'UpgradeStatus', data: { status: 'SILVER' } }).thenRejected({ code: 'NOT_AN_UPGRADE', reason: /only upgrades/ });
  t.like(o.state, { status: 'GOLD' }, 'a rejected downgrade leaves the status as it was');
});

test('a command to a user that does not exist is rejected, and the user still has no state', async (t) => {
  const o = await users.when({ commandType: 'UpdateEmail', data: { email: 'b@x.example' } }).thenRejected({ code: 'USER_NOT_FOUND' });
  t.is(o.state, undefined);
  t.is(o.version, 0);
});

test('user-view: a user created, then changed, has one view with every change applied', async (t) => {
  const o = await userView
    .given(
      { eventType: 'UserCreated', aggregateId: 'u1', eventVersion: 2, timestamp: '2026-01-01T00:00:00.000Z', data: { email: 'ann@x.example', fullName: 'Ann', status: 'ACTIVE' } },
      { eventType: 'EmailChanged', aggregateId: 'u1', timestamp: '2026-01-02T00:00:00.000Z', data: { oldEmail: 'ann@x.example', newEmail: 'b@x.example' } },
      { eventType: 'StatusUpgraded', aggregateId: 'u1', timestamp: '2026-01-03T00:00:00.000Z', data: { oldStatus: 'ACTIVE', status: 'GOLD' } },
    )
    .thenView('u1', {
      id: 'u1',
      email: 'b@x.example',
      fullName: 'Ann',
      status: 'GOLD',
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-03T00:00:00.000Z',
      emailChanges: 1,
      statusHistory: ['GOLD'],
    });
  t.deepEqual(o.deadLetters, [], 'every event applied, none dead-lettered');
});

test('user-view: a v1 UserCreated is upcast (name → fullName, status ACTIVE); a too-new one leaves no view', async (t) => {
  const o = await userView
    .given(
      { eventType: 'UserCreated', aggregateId: 'old-1', eventVersion: 1, timestamp: '2024-05-01T00:00:00.000Z', data: { email: 'old@x.example', name: 'Olga' } },
      { eventType: 'UserCreated', aggregateId: 'new-1', eventVersion: 3, data: { email: 'new@x.example' } },
    )
    .thenView('old-1', { id: 'old-1', email: 'old@x.example', fullName: 'Olga', status: 'ACTIVE', createdAt: '2024-05-01T00:00:00.000Z', updatedAt: '2024-05-01T00:00:00.000Z' });
  t.false(o.views.has('new-1'));
  t.deepEqual(o.deadLetters.map((l) => [l.key, l.code]), [['new-1', 'EVENT_VERSION_UNSUPPORTED']]);
});

test('users-by-status: an upgrade leaves the old status group and joins the new one; an emptied group has no view', async (t) => {
  const scenario = usersByStatus.given(
    { eventType: 'UserCreated', aggregateId: 'u1', eventVersion: 2, data: { status: 'ACTIVE' } },
    { eventType: 'UserCreated', aggregateId: 'u2', eventVersion: 2, data: { status: 'ACTIVE' } },
    { eventType: 'StatusUpgraded', aggregateId: 'u1', data: { status: 'GOLD' } },
    { eventType: 'StatusUpgraded', aggregateId: 'u1', data: { status: 'VIP' } },
  );
  await scenario.thenView('ACTIVE', { key: 'ACTIVE', count: 1 });
  await scenario.thenView('VIP', { key: 'VIP', count: 1 });
  const o = await scenario.thenView('GOLD', null);
  t.deepEqual([...o.views.keys()].sort(), ['ACTIVE', 'GOLD', 'VIP'], 'GOLD was written, then deleted with a tombstone');
});
