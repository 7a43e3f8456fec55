// Upcasters with no broker: old eventVersions lifted before any processor sees them, newer ones dead-lettered.
import test from 'ava';
import { join } from 'node:path';
import type { EventEnvelope } from '../../src/serde/envelope.ts';
import type { TopologyInput } from '../../src/topology/schema.ts';
import { aggregateSpec, TopologyTestDriver } from '../../src/testing/index.ts';
import { FIXTURES, ROOT } from '../helpers/cli.ts';

function userCreated(id: string, eventVersion: number, data: Record<string, unknown>, aggregateVersion = 1): EventEnvelope {
  return { eventId: `e-${id}-${aggregateVersion}`, eventType: 'UserCreated', eventVersion, aggregateType: 'User', aggregateId: id, aggregateVersion, timestamp: '2025-03-01T00:00:00.000Z', data };
}

test('a v1 UserCreated is upcast to v2 (name becomes fullName, status defaults to ACTIVE) before the projections see it', async (t) => {
  const d = await TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
  await d.pipe('events', 'old-1', userCreated('old-1', 1, { email: 'old@x.example', name: 'Olga' }));
  await d.pipe('events', 'old-2', userCreated('old-2', 1, { email: 'gold@x.example', name: 'Gus', status: 'GOLD' }));
  const views = d.output('user-view').map((r) => r.value);
  t.like(views[0], { id: 'old-1', fullName: 'Olga', status: 'ACTIVE', email: 'old@x.example' });
  t.false('name' in (views[0] as object));
  t.like(views[1], { fullName: 'Gus', status: 'GOLD' }, 'a default does not overwrite a value the event has');
  t.deepEqual(d.output('users-by-status').map((r) => r.value), [{ key: 'ACTIVE', count: 1 }, { key: 'GOLD', count: 1 }]);
  t.is(d.metric('user-view', 'upcasts', { event_type: 'UserCreated', from_version: '1', to_version: '2' }), 2);
  t.deepEqual(d.deadLetters('user-view'), []);
});

test('an event newer than maxEventVersion goes to the DLQ with EVENT_VERSION_UNSUPPORTED, and the events after it are processed', async (t) => {
  const d = await TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
  const tooNew = userCreated('new-1', 3, { email: 'n@x.example', fullName: 'Nina', status: 'ACTIVE', nickname: 'N' });
  await d.pipe('events', 'new-1', tooNew, { headers: { origin: 'future-service' } });
  await d.pipe('events', 'new-2', userCreated('new-2', 2, { email: 'm@x.example', fullName: 'Max', status: 'ACTIVE' }));
  const dlq = d.deadLetters('user-view');
  t.is(dlq.length, 1);
  t.like(dlq[0]!.headers, {
    'foldstream.error.code': 'EVENT_VERSION_UNSUPPORTED',
    'foldstream.error.message': 'UserCreated has eventVersion 3; this processor supports up to 2 (maxEventVersion), after upcasting',
    'foldstream.processor': 'user-view',
    'foldstream.source.topic': 'events',
    origin: 'future-service',
  });
  t.deepEqual(JSON.parse(String(dlq[0]!.value)), tooNew);
  t.deepEqual(d.output('user-view').map((r) => r.key), ['new-2']);
  t.is(d.deadLetters('users-by-status').length, 1, 'each processor dead-letters in its own topic');
});

const chain = `app: up
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: up-events, partitions: 2 }
  view: { name: up-view, partitions: 2, config: { cleanup.policy: compact } }
  copies: { name: up-copies, partitions: 2 }
upcasters:
  - eventType: OrderPlaced
    fromVersion: 1
    toVersion: 2
    rename: { total: amount.value }
    remove: [legacyFlag]
    defaults: { amount.currency: "'EUR'" }
    set: { placedBy: "$uppercase(data.customer)", customer: data.missing }
  - eventType: OrderPlaced
    fromVersion: 2
    toVersion: 3
    module: ./modules/order-placed-v3.ts
  - eventType: Broken
    fromVersion: 1
    toVersion: 2
    module: ./modules/broken-upcaster.ts
processors:
  - name: orders
    type: projection
    input: events
    output: view
    maxEventVersion: { OrderPlaced: 3 }
    on:
      OrderPlaced: { set: { order: data } }
      Broken: { set: { x: "1" } }
  - name: copier
    type: custom
    input: events
    module: ./modules/echo.ts
    outputs: [copies]
`;

test('upcasters chain: v1 → v2 by rules (rename, remove, defaults, set over the event as read), v2 → v3 by a module', async (t) => {
  const d = await TopologyTestDriver.fromYaml(chain, FIXTURES);
  const v1: EventEnvelope = {
    eventId: 'o1',
    eventType: 'OrderPlaced',
    eventVersion: 1,
    aggregateType: 'Order',
    aggregateId: 'o-1',
    aggregateVersion: 1,
    timestamp: '2025-01-01T00:00:00.000Z',
    data: { total: 12, legacyFlag: true, customer: 'ann' },
  };
  await d.pipe('events', 'o-1', v1);
  const expected = { amount: { value: 12, currency: 'EUR' }, placedBy: 'ANN', schema: 'v3' };
  t.deepEqual(d.output('view').map((r) => r.value), [{ order: expected }]);
  // custom processors see the upcast event too, with its new version
  t.like(d.output<EventEnvelope>('copies')[0]!.value, { eventVersion: 3, data: expected });
  t.is(d.metric('orders', 'upcasts'), 2);
});

test('an upcaster module that breaks the envelope dead-letters the event as ENVELOPE_INVALID', async (t) => {
  const d = await TopologyTestDriver.fromYaml(chain, FIXTURES);
  const e: EventEnvelope = { eventId: 'b1', eventType: 'Broken', eventVersion: 1, aggregateType: 'X', aggregateId: 'x', aggregateVersion: 1, timestamp: '2025-01-01T00:00:00.000Z', data: {} };
  await d.pipe('events', 'x', e);
  t.deepEqual(d.deadLetters('orders').map((r) => [r.headers['foldstream.error.code'], r.headers['foldstream.error.message']]), [
    ['ENVELOPE_INVALID', 'after upcasting: event envelope: "aggregateId" must be a non-empty string, got number 42'],
  ]);
});

const flaky = `app: flaky-up
kafka: { brokers: "127.0.0.1:9092" }
processing: { retry: { attempts: 3, initialBackoffMs: 1, maxBackoffMs: 1 } }
topics:
  events: { name: fu-events, partitions: 1 }
  view: { name: fu-view, partitions: 1, config: { cleanup.policy: compact } }
upcasters:
  - { eventType: Named, fromVersion: 1, toVersion: 2, defaults: { failures: "2" } }
processors:
  - { name: names, type: projection, input: events, output: view, module: ./modules/flaky-projection.ts }
`;

test('an upcast is counted once when the processor after it fails twice and then succeeds: the failed attempts are undone', async (t) => {
  const d = await TopologyTestDriver.fromYaml(flaky, FIXTURES);
  const e: EventEnvelope = { eventId: 'n1', eventType: 'Named', eventVersion: 1, aggregateType: 'N', aggregateId: 'n', aggregateVersion: 1, timestamp: '2025-01-01T00:00:00.000Z', data: { name: 'x' } };
  await d.pipe('events', 'n', e);
  t.deepEqual(d.output('view').map((r) => r.value), [{ name: 'x', attempts: 3 }]);
  t.is(d.metric('names', 'upcasts'), 1);
  t.is(d.metric('names', 'projection_events', { outcome: 'applied' }), 1);
});

// Regression (issue 14, defect 3): given history went around the upcasters, so legacy events could not be tested the
// way they run — a v1 event threw in a module's evolve, and in a declarative aggregate silently removed the field it
// feeds (a later Withdraw was then accepted with no event). appendEvents and aggregateSpec(...).given(...) lift them.
const bank = (aggregate: Record<string, unknown>): TopologyInput => ({
  app: 'bank',
  kafka: { brokers: '127.0.0.1:9092' },
  topics: { commands: { name: 'bank-commands', partitions: 2 }, events: { name: 'bank-events', partitions: 2 }, replies: { name: 'bank-replies', partitions: 2 } },
  upcasters: [{ eventType: 'Deposited', fromVersion: 1, toVersion: 2, rename: { amt: 'amount' } }],
  processors: [{ name: 'accounts', type: 'aggregate', aggregateType: 'Account', input: 'commands', output: { events: 'events', replies: 'replies' }, ...aggregate } as TopologyInput['processors'][number]],
});
const moduleBank = bank({ module: './modules/ledger.ts' });
const declarativeBank = bank({
  initialState: { balance: 0 },
  commands: {
    Withdraw: {
      reject: [{ if: '$not(state.balance >= command.data.amount)', reason: 'insufficient funds', code: 'INSUFFICIENT_FUNDS' }],
      emit: [{ type: 'Withdrawn', data: { amount: 'command.data.amount' } }],
    },
  },
  evolve: { Deposited: { balance: 'state.balance + event.data.amount' }, Withdrawn: { balance: 'state.balance - event.data.amount' } },
});
const legacyDeposit = { type: 'Deposited', eventVersion: 1, data: { amt: 100 } };

for (const [kind, topology] of [['a decider module', moduleBank], ['a declarative aggregate', declarativeBank]] as const) {
  test(`appendEvents lifts legacy events through the upcasters before ${kind} evolves them`, async (t) => {
    const d = await TopologyTestDriver.fromObject(topology, FIXTURES);
    const appended = await d.appendEvents('accounts', 'a1', [legacyDeposit]);
    t.like(appended[0], { eventVersion: 1, data: { amt: 100 } }, 'the history keeps the event as written');
    t.like(d.output<EventEnvelope>('events')[0]!.value, { eventVersion: 1, data: { amt: 100 } });
    t.deepEqual((await d.store('accounts', 'state')).get('a1'), { version: 1, state: { balance: 100 } });
    const reply = await d.pipeCommand({ commandType: 'Withdraw', aggregateId: 'a1', data: { amount: 30 } });
    t.like(reply, { status: 'accepted', aggregateVersion: 2 });
    t.deepEqual((await d.store('accounts', 'state')).get('a1'), { version: 2, state: { balance: 70 } });
  });

  test(`aggregateSpec given legacy events runs them through the upcasters for ${kind}`, async (t) => {
    const accounts = aggregateSpec({ topology, baseDir: FIXTURES, processor: 'accounts', aggregateId: 'a1' });
    await t.notThrowsAsync(accounts.given(legacyDeposit).when({ commandType: 'Withdraw', data: { amount: 30 } }).thenEvents([{ type: 'Withdrawn', data: { amount: 30 } }]));
    await t.notThrowsAsync(accounts.given(legacyDeposit).when({ commandType: 'Withdraw', data: { amount: 130 } }).thenRejected({ code: 'INSUFFICIENT_FUNDS' }));
  });
}
