// Projections with no broker: declarative rules, idempotency by aggregate version, unknown event types, modules and
// chaining, through the TopologyTestDriver.
import test from 'ava';
import { join } from 'node:path';
import type { EventEnvelope } from '../../src/serde/envelope.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { memoryLogger } from '../helpers/log.ts';
import { FIXTURES, ROOT } from '../helpers/cli.ts';
import { prng } from '../helpers/prng.ts';
import { randomCommands } from '../helpers/user-model.ts';

let n = 0;
function event(eventType: string, aggregateId: string, aggregateVersion: number, data: Record<string, unknown>, extra: Partial<EventEnvelope> = {}): EventEnvelope {
  return {
    eventId: `e-${++n}`,
    eventType,
    eventVersion: 1,
    aggregateType: 'User',
    aggregateId,
    aggregateVersion,
    timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, aggregateVersion)).toISOString(),
    data,
    ...extra,
  };
}

/** The user-view of topology.yaml computed from events applied once each, in version order. */
function userViewModel(events: EventEnvelope[]): Record<string, Record<string, unknown>> {
  const views: Record<string, Record<string, unknown>> = {};
  const applied = new Map<string, number>();
  for (const e of events) {
    if ((applied.get(e.aggregateId) ?? 0) >= e.aggregateVersion) continue;
    applied.set(e.aggregateId, e.aggregateVersion);
    const v = (views[e.aggregateId] ??= {});
    if (e.eventType === 'UserCreated') Object.assign(v, { id: e.aggregateId, email: e.data.email, fullName: e.data.fullName, status: e.data.status, createdAt: e.timestamp, updatedAt: e.timestamp });
    if (e.eventType === 'EmailChanged') Object.assign(v, { email: e.data.newEmail, updatedAt: e.timestamp, emailChanges: ((v.emailChanges as number) ?? 0) + 1 });
    if (e.eventType === 'StatusUpgraded') Object.assign(v, { status: e.data.status, updatedAt: e.timestamp, statusHistory: [...((v.statusHistory as string[]) ?? []), e.data.status] });
  }
  return views;
}

const latest = <V>(records: { key: string | null; value: V }[]) => {
  const out: Record<string, V> = {};
  for (const r of records) out[r.key!] = r.value;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
};

test('the projection skips (and counts) events whose version it already applied, and the view equals a model', async (t) => {
  const d = await TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
  for (const c of randomCommands(400, 20, 3)) await d.pipe('commands', c.aggregateId, c);
  const emitted = d.output<EventEnvelope>('events').map((r) => r.value);
  // replay a random selection of events: duplicates, and older versions after newer ones
  const rnd = prng(5);
  const replayed = emitted.filter(() => rnd() < 0.3);
  for (const e of replayed) await d.pipe('events', e.aggregateId, e);
  t.true(replayed.length > 30);
  t.is(d.metric('user-view', 'projection_events', { outcome: 'already_applied' }), replayed.length);
  t.is(d.metric('user-view', 'projection_events', { outcome: 'applied' }), emitted.length);
  const model = userViewModel([...emitted, ...replayed]);
  t.deepEqual(latest(d.output('user-view')), model);
  const store = await d.store<{ view: unknown; version: number }>('user-view', 'view');
  t.deepEqual(Object.fromEntries([...store].map(([k, v]) => [k, v.view])), model);
  // the view's version is the last applied aggregate version, also in the view record's header
  const lastVersion = new Map(emitted.map((e) => [e.aggregateId, e.aggregateVersion]));
  for (const [k, v] of store) t.is(v.version, lastVersion.get(k) ?? -1);
  for (const r of d.output('user-view').slice(-5)) t.is(r.headers['foldstream.view.version'], String(store.get(r.key!)!.version));
});

const rules = (extra = '') => `app: rules
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: rules-events, partitions: 3 }
  view: { name: rules-view, partitions: 3, config: { cleanup.policy: compact } }
processors:
  - name: carts
    type: projection
    input: events
    output: view
${extra}    on:
      CartOpened: { set: { owner: data.owner, "meta.openedAt": timestamp, items: "[]" } }
      ItemAdded:
        append: { items: data.sku }
        increment: { count: 1, total: data.price }
        set: { last: data.sku, previousLast: $view.last, key: $key }
      NoteCleared: { unset: [note, meta.openedAt] }
      NoteSet: { set: { note: data.note, missing: data.nothing } }
      CartClosed: { delete: true }
`;

test('on rules set, unset, increment and append view fields, with $view and $key bound; delete is a tombstone that keeps its version', async (t) => {
  const d = await TopologyTestDriver.fromYaml(rules(), FIXTURES);
  const pipe = (e: EventEnvelope) => d.pipe('events', e.aggregateId, e);
  await pipe(event('CartOpened', 'c1', 1, { owner: 'ann' }));
  await pipe(event('ItemAdded', 'c1', 2, { sku: 'A', price: 5 }));
  await pipe(event('ItemAdded', 'c1', 3, { sku: 'B', price: 7.5 }));
  await pipe(event('NoteSet', 'c1', 4, { note: 'gift' }));
  await pipe(event('NoteCleared', 'c1', 5, {}));
  const out = d.output('view');
  t.deepEqual(out[2]!.value, {
    owner: 'ann',
    meta: { openedAt: '2026-01-01T00:00:01.000Z' },
    items: ['A', 'B'],
    count: 2,
    total: 12.5,
    last: 'B',
    previousLast: 'A',
    key: 'c1',
  });
  t.like(out[3]!.value, { note: 'gift' });
  t.false('missing' in (out[3]!.value as object), 'an expression with no value sets nothing');
  t.deepEqual(out[4]!.value, { owner: 'ann', meta: {}, items: ['A', 'B'], count: 2, total: 12.5, last: 'B', previousLast: 'A', key: 'c1' });

  await pipe(event('CartClosed', 'c1', 6, {}));
  await pipe(event('ItemAdded', 'c1', 3, { sku: 'late', price: 1 }));
  const after = d.output('view');
  t.is(after.length, 6, 'the late event after the delete changes nothing');
  t.like(after[5], { key: 'c1', value: null, headers: { 'foldstream.view.version': '6' } });
  t.deepEqual((await d.store('carts', 'view')).get('c1'), { view: null, version: 6 });
});

test('unknown event types are ignored and counted by default', async (t) => {
  const d = await TopologyTestDriver.fromYaml(rules(), FIXTURES);
  await d.pipe('events', 'c1', event('CartOpened', 'c1', 1, { owner: 'ann' }));
  await d.pipe('events', 'c1', event('CartAbandoned', 'c1', 2, {}));
  await d.pipe('events', 'c1', event('ItemAdded', 'c1', 3, { sku: 'A', price: 1 }));
  t.is(d.metric('carts', 'projection_events', { outcome: 'unknown_type' }), 1);
  t.is(d.output('view').length, 2);
  t.deepEqual(d.deadLetters('carts'), []);
});

test('unknownEvents warn logs each unknown event type; dlq dead-letters it with EVENT_TYPE_UNKNOWN', async (t) => {
  const log = memoryLogger();
  const warn = await TopologyTestDriver.fromYaml(rules('    unknownEvents: warn\n'), FIXTURES, { log });
  await warn.pipe('events', 'c1', event('CartAbandoned', 'c1', 1, {}));
  t.like(log.events('projection.unknown_event_type')[0], { processor: 'carts', eventType: 'CartAbandoned' });
  t.deepEqual(warn.deadLetters('carts'), []);

  const dlq = await TopologyTestDriver.fromYaml(rules('    unknownEvents: dlq\n'), FIXTURES);
  await dlq.pipe('events', 'c1', event('CartAbandoned', 'c1', 1, {}));
  await dlq.pipe('events', 'c1', event('CartOpened', 'c1', 2, { owner: 'ann' }));
  t.deepEqual(dlq.deadLetters('carts').map((r) => [r.headers['foldstream.error.code'], r.headers['foldstream.error.message']]), [
    ['EVENT_TYPE_UNKNOWN', 'processor "carts" has no rule for event type "CartAbandoned"'],
  ]);
  t.is(dlq.output('view').length, 1, 'the record after it is processed');
});

const withModule = (unknown = 'ignore') => `app: mod
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: mod-events, partitions: 3 }
  view: { name: mod-view, partitions: 3, config: { cleanup.policy: compact } }
processors:
  - name: names
    type: projection
    input: events
    output: view
    unknownEvents: ${unknown}
    module: ./modules/name-projection.ts
`;

test('a projection module gets the view and the event and returns the next view; null deletes it', async (t) => {
  const d = await TopologyTestDriver.fromYaml(withModule('dlq'), FIXTURES);
  await d.pipe('events', 'u1', event('UserCreated', 'u1', 1, { fullName: 'Ann' }));
  await d.pipe('events', 'u1', event('UserRenamed', 'u1', 2, { fullName: 'Anna' }));
  await d.pipe('events', 'u1', event('UserRenamed', 'u1', 2, { fullName: 'again' }));
  await d.pipe('events', 'u1', event('Unrelated', 'u1', 3, {}));
  await d.pipe('events', 'u1', event('UserDeleted', 'u1', 4, {}));
  t.deepEqual(d.output('view').map((r) => r.value), [{ name: 'Ann', renames: 0 }, { name: 'Anna', renames: 1 }, null]);
  t.deepEqual(d.deadLetters('names').map((r) => r.headers['foldstream.error.code']), ['EVENT_TYPE_UNKNOWN'], 'eventTypes lists what it handles');
});

test('a projection module must export eventTypes when unknown events are to be warned about or dead-lettered', async (t) => {
  const e = await t.throwsAsync(TopologyTestDriver.fromYaml(withModule('warn').replace('name-projection', 'name-projection-untyped'), FIXTURES));
  t.regex(e!.message, /unknownEvents is warn, but module ".*name-projection-untyped.ts" does not export eventTypes/);
  await t.notThrowsAsync(TopologyTestDriver.fromYaml(withModule('ignore').replace('name-projection', 'name-projection-untyped'), FIXTURES));
});

const chained = `app: chain
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: chain-events, partitions: 3 }
  users: { name: chain-users, partitions: 3, config: { cleanup.policy: compact } }
  emails: { name: chain-emails, partitions: 3, config: { cleanup.policy: compact } }
processors:
  - name: users
    type: projection
    input: events
    output: users
    on:
      UserCreated: { set: { email: data.email, name: data.fullName } }
      EmailChanged: { set: { email: data.newEmail } }
      UserDeleted: { delete: true }
  - name: emails
    type: projection
    input: users
    inputFormat: view
    output: emails
    on:
      ViewUpdated: { set: { address: data.email, domain: "$substringAfter(data.email, '@')" }, increment: { updates: 1 } }
      ViewDeleted: { delete: true }
`;

test('a projection chained on another one sees its views as ViewUpdated and ViewDeleted events, idempotent by the view version', async (t) => {
  const d = await TopologyTestDriver.fromYaml(chained, FIXTURES);
  await d.pipe('events', 'u1', event('UserCreated', 'u1', 1, { email: 'ann@a.example', fullName: 'Ann' }));
  await d.pipe('events', 'u1', event('EmailChanged', 'u1', 2, { newEmail: 'ann@b.example' }));
  // a view record replayed into the view topic (as a restarted upstream without EOS might): already applied
  const replay = d.output('users')[0]!;
  await d.pipe('users', 'u1', replay.value, { headers: replay.headers });
  await d.pipe('events', 'u1', event('UserDeleted', 'u1', 3, {}));
  t.deepEqual(d.output('emails').map((r) => [r.key, r.value, r.headers['foldstream.view.version']]), [
    ['u1', { address: 'ann@a.example', domain: 'a.example', updates: 1 }, '1'],
    ['u1', { address: 'ann@b.example', domain: 'b.example', updates: 2 }, '2'],
    ['u1', null, '3'],
  ]);
  t.is(d.metric('emails', 'projection_events', { outcome: 'already_applied' }), 1);
});

const msgpack = `app: mp
kafka: { brokers: "127.0.0.1:9092" }
modules: { root: ${ROOT} }
topics:
  commands: { name: mp-commands, partitions: 3 }
  events: { name: mp-events, partitions: 3, codec: msgpack }
  view: { name: mp-view, partitions: 3, codec: msgpack, config: { cleanup.policy: compact } }
processors:
  - name: users
    type: aggregate
    aggregateType: User
    input: commands
    output: { events: events }
    module: ${join(ROOT, 'examples/users/user.ts')}
  - name: user-view
    type: projection
    input: events
    output: view
    on:
      UserCreated: { set: { email: data.email } }
`;

test('events and views in msgpack: the aggregate writes, the projection reads and writes with the topics codec', async (t) => {
  const d = await TopologyTestDriver.fromYaml(msgpack, FIXTURES);
  await d.pipe('commands', 'u1', { commandId: 'c1', commandType: 'CreateUser', aggregateId: 'u1', data: { email: 'a@x.example' } });
  const [e] = d.output<EventEnvelope>('events');
  t.like(e!.value, { eventType: 'UserCreated', aggregateVersion: 1, data: { email: 'a@x.example' } });
  t.deepEqual(d.output('view').map((r) => r.value), [{ email: 'a@x.example' }]);
  // a JSON record on the msgpack topic does not decode as msgpack and is dead-lettered
  await d.pipe('events', 'u2', Buffer.from('{"eventType":"UserCreated"}'), { raw: true });
  t.deepEqual(d.deadLetters('user-view').map((r) => r.headers['foldstream.error.code']), ['DESERIALIZATION_FAILED']);
});
