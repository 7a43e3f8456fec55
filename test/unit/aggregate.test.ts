// The aggregate processor with no broker: the users example's decider, declarative rules, concurrency, idempotency,
// stamping, history, partitioning and retries, through the TopologyTestDriver.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventProblem, replyProblem, type EventEnvelope, type Reply } from '../../src/serde/envelope.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { FIXTURES, ROOT } from '../helpers/cli.ts';
import { command, randomCommands, UserModel, type Command } from '../helpers/user-model.ts';

const users = () => TopologyTestDriver.fromFile(join(ROOT, 'topology.yaml'));
const send = (d: TopologyTestDriver, c: Command) => d.pipe('commands', c.aggregateId, c);
const replies = (d: TopologyTestDriver) => d.output<Reply>('replies').map((r) => r.value);
const events = (d: TopologyTestDriver) => d.output<EventEnvelope>('events').map((r) => r.value);

test('creating a user twice rejects the second command with the reason, and only one UserCreated exists', async (t) => {
  const d = await users();
  await send(d, command('CreateUser', 'u1', { email: 'ann@example.com' }));
  await send(d, command('CreateUser', 'u1', { email: 'other@example.com' }));
  const [first, second] = replies(d);
  t.is(first?.status, 'accepted');
  t.like(second, { status: 'rejected', code: 'USER_EXISTS', reason: 'user u1 already exists', aggregateVersion: 1, eventIds: [] });
  t.deepEqual(events(d).map((e) => [e.eventType, e.data.email]), [['UserCreated', 'ann@example.com']]);
  t.is(d.metric('users', 'command_outcomes', { outcome: 'rejected' }), 1);
});

test('UpdateEmail to the address the user already has is accepted with no event and no new version', async (t) => {
  const d = await users();
  await send(d, command('CreateUser', 'u1', { email: 'ann@example.com' }));
  await send(d, command('UpdateEmail', 'u1', { email: 'ann@example.com' }, { expectedVersion: 1 }));
  t.like(replies(d)[1], { status: 'accepted', aggregateVersion: 1, eventIds: [] });
  t.deepEqual(events(d).map((e) => e.eventType), ['UserCreated']);
  t.deepEqual((await d.store('users', 'state')).get('u1'), { version: 1, state: { exists: true, email: 'ann@example.com', fullName: '', status: 'ACTIVE' } });
});

test('of two UpdateEmail commands with the same stale expectedVersion, the first is accepted and the second gets a conflict', async (t) => {
  const d = await users();
  await send(d, command('CreateUser', 'u1', { email: 'ann@example.com' }));
  await send(d, command('UpgradeStatus', 'u1', { status: 'GOLD' }));
  // both senders read the user at version 2 and send with it: the second one's is stale by the time it arrives
  await send(d, command('UpdateEmail', 'u1', { email: 'b@example.com' }, { expectedVersion: 2 }));
  await send(d, command('UpdateEmail', 'u1', { email: 'c@example.com' }, { expectedVersion: 2 }));
  const [, , a, b] = replies(d);
  t.like(a, { status: 'accepted', aggregateVersion: 3 });
  t.like(b, { status: 'conflict', code: 'CONCURRENCY_CONFLICT', aggregateVersion: 3, eventIds: [], reason: "expectedVersion 2 differs from the aggregate's version 3" });
  t.deepEqual(
    events(d).filter((e) => e.eventType === 'EmailChanged').map((e) => e.data),
    [{ oldEmail: 'ann@example.com', newEmail: 'b@example.com' }],
  );
  t.is(d.metric('users', 'command_outcomes', { outcome: 'conflict' }), 1);
});

test('a repeated commandId gets the first reply again and emits no second event, even after the state moved on', async (t) => {
  const d = await users();
  const create = command('CreateUser', 'u1', { email: 'ann@example.com' });
  const upgrade = command('UpgradeStatus', 'u1', { status: 'SILVER' }, { expectedVersion: 1 });
  await send(d, create);
  await send(d, upgrade);
  await send(d, command('UpgradeStatus', 'u1', { status: 'GOLD' }));
  await send(d, upgrade);
  await send(d, create);
  const r = replies(d);
  t.deepEqual(r[3], r[1]);
  t.deepEqual(r[4], r[0]);
  t.deepEqual(events(d).map((e) => e.aggregateVersion), [1, 2, 3]);
  t.is(d.metric('users', 'command_outcomes', { outcome: 'duplicate' }), 2);
  // the commands store keeps the reply per aggregate and commandId (docs/wire-formats.md), with the command's fingerprint
  const { fingerprint, ...kept } = (await d.store<Reply & { fingerprint: string }>('users', 'commands')).get(JSON.stringify(['u1', upgrade.commandId]))!;
  t.deepEqual(kept, r[1]);
  t.regex(fingerprint, /^[\w-]{22}$/);
});

test('every event is stamped: id, type, version +1 per event, aggregate, time, user, correlation and causation', async (t) => {
  const d = await users();
  const create = command('CreateUser', 'u1', { email: 'ann@example.com', fullName: 'Ann' }, { userId: 'admin-7', timestamp: '2026-11-27T10:00:00.000Z' });
  const upgrade = command('UpgradeStatus', 'u1', { status: 'VIP' }, { userId: 'admin-8' });
  await send(d, create);
  await d.pipe('commands', 'u1', { ...upgrade, correlationId: 'flow-1' }, { timestamp: Date.parse('2026-11-28T00:00:00.000Z') });
  const [e1, e2] = events(d);
  t.deepEqual({ ...e1, eventId: undefined }, {
    eventId: undefined,
    eventType: 'UserCreated',
    eventVersion: 2,
    aggregateType: 'User',
    aggregateId: 'u1',
    aggregateVersion: 1,
    timestamp: '2026-11-27T10:00:00.000Z',
    userId: 'admin-7',
    correlationId: create.commandId,
    causationId: create.commandId,
    data: { email: 'ann@example.com', fullName: 'Ann', status: 'ACTIVE' },
  });
  // no timestamp in the command: the command record's time, so a re-run stamps the same
  t.like(e2, { aggregateVersion: 2, userId: 'admin-8', timestamp: '2026-11-28T00:00:00.000Z', correlationId: 'flow-1', causationId: upgrade.commandId });
  t.regex(e1!.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.not(e1!.eventId, e2!.eventId);
  t.deepEqual(replies(d).map((r) => r.eventIds), [[e1!.eventId], [e2!.eventId]]);
  // events are keyed by aggregate id and land where murmur2 puts the key
  const out = d.output('events');
  t.deepEqual(out.map((r) => [r.key, r.partition]), [['u1', partitionForKey('u1', 12)], ['u1', partitionForKey('u1', 12)]]);
});

test('the same commands give the same events, event ids included, in a second run', async (t) => {
  const cs = randomCommands(200, 10, 7);
  const run = async () => {
    const d = await users();
    for (const c of cs) await send(d, c);
    return { events: events(d), replies: replies(d) };
  };
  const [a, b] = [await run(), await run()];
  t.true(a.events.length > 20);
  t.deepEqual(a, b);
});

test('replies and events follow the rules for hundreds of random commands, stale versions and retries included', async (t) => {
  const d = await users();
  const model = new UserModel();
  const cs = randomCommands(600, 25, 11);
  for (const c of cs) await send(d, c);
  const got = replies(d);
  t.is(got.length, cs.length);
  const expected = cs.map((c) => model.apply(c));
  t.deepEqual(
    got.map((r) => [r.commandId, r.status, r.aggregateVersion, r.eventIds.length]),
    cs.map((c, i) => [c.commandId, expected[i]!.status, expected[i]!.aggregateVersion, expected[i]!.events]),
  );
  const statuses = new Set(got.map((r) => r.status));
  t.deepEqual([...statuses].sort(), ['accepted', 'conflict', 'rejected'], 'the run exercises every outcome');
  // what the aggregate writes passes the check readers of the replies topic make (the command gateway's)
  t.deepEqual(got.map(replyProblem).filter(Boolean), []);
  t.deepEqual(events(d).map(eventProblem).filter(Boolean), []);
  // per aggregate, versions go 1, 2, 3, ... with no gap or repeat
  const versions = new Map<string, number[]>();
  for (const e of events(d)) versions.set(e.aggregateId, [...(versions.get(e.aggregateId) ?? []), e.aggregateVersion]);
  for (const [id, vs] of versions) t.deepEqual(vs, vs.map((_, i) => i + 1), id);
  const state = await d.store<{ version: number; state: { status: string; email: string } }>('users', 'state');
  t.deepEqual(
    Object.fromEntries([...state].map(([id, s]) => [id, [s.version, s.state.status, s.state.email]])),
    Object.fromEntries([...model.users].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, u]) => [id, [u.version, u.status, u.email]])),
  );
});

test('with history on, every event is kept under <aggregateId>:<version padded to 10 digits>', async (t) => {
  const d = await users();
  await send(d, command('CreateUser', 'u1', { email: 'ann@example.com' }));
  await send(d, command('UpdateEmail', 'u1', { email: 'b@example.com' }));
  const history = await d.store<EventEnvelope>('users', 'history');
  t.deepEqual([...history.keys()], ['u1:0000000001', 'u1:0000000002']);
  t.deepEqual([...history.values()], events(d));
});

const declarative = `app: decl
kafka: { brokers: "127.0.0.1:9092" }
topics:
  commands: { name: decl-commands, partitions: 4 }
  events: { name: decl-events, partitions: 4 }
  replies: { name: decl-replies, partitions: 4 }
processors:
  - name: accounts
    type: aggregate
    aggregateType: Account
    input: commands
    output: { events: events, replies: replies }
    history: true
    initialState: { balance: 0, open: false }
    commands:
      Open:
        reject: [{ if: state.open, reason: account is open already, code: ALREADY_OPEN }]
        emit:
          - { type: Opened, data: { owner: command.data.owner } }
          - { type: Deposited, when: "command.data.initial > 0", data: { amount: command.data.initial } }
      Withdraw:
        reject:
          - { if: "$not(state.open)", reason: no such account }
          - { if: "command.data.amount > state.balance", reason: insufficient funds, code: INSUFFICIENT_FUNDS }
        emit: [{ type: Withdrawn, eventVersion: 2, data: { amount: command.data.amount, left: "state.balance - command.data.amount" } }]
    evolve:
      Opened: { open: "true", owner: event.data.owner }
      Deposited: { balance: "state.balance + event.data.amount" }
      Withdrawn: { balance: "state.balance - event.data.amount" }
`;

test('declarative rules: rejections in order with reason and code, conditional events, several events from one command', async (t) => {
  const d = await TopologyTestDriver.fromYaml(declarative, FIXTURES);
  const cmd = (type: string, data: Record<string, unknown>) => d.pipe('commands', 'a1', command(type, 'a1', data));
  await cmd('Withdraw', { amount: 5 });
  await cmd('Open', { owner: 'ann', initial: 100 });
  await cmd('Open', { owner: 'bob' });
  await cmd('Withdraw', { amount: 500 });
  await cmd('Withdraw', { amount: 30 });
  await cmd('Close', {});
  t.deepEqual(
    replies(d).map((r) => [r.status, r.code ?? '', r.reason ?? '', r.aggregateVersion, r.eventIds.length]),
    [
      ['rejected', 'DOMAIN_REJECTED', 'no such account', 0, 0],
      ['accepted', '', '', 2, 2],
      ['rejected', 'ALREADY_OPEN', 'account is open already', 2, 0],
      ['rejected', 'INSUFFICIENT_FUNDS', 'insufficient funds', 2, 0],
      ['accepted', '', '', 3, 1],
      ['rejected', 'COMMAND_UNKNOWN', 'unknown command type "Close"', 3, 0],
    ],
  );
  t.deepEqual(
    events(d).map((e) => [e.eventType, e.eventVersion, e.aggregateVersion, e.data]),
    [
      ['Opened', 1, 1, { owner: 'ann' }],
      ['Deposited', 1, 2, { amount: 100 }],
      ['Withdrawn', 2, 3, { amount: 30, left: 70 }],
    ],
  );
  // both events of Open share the command as their cause, and the state saw both
  t.is(events(d)[0]!.causationId, events(d)[1]!.causationId);
  t.deepEqual((await d.store('accounts', 'state')).get('a1'), { version: 3, state: { balance: 70, open: true, owner: 'ann' } });
  t.deepEqual([...(await d.store('accounts', 'history')).keys()], ['a1:0000000001', 'a1:0000000002', 'a1:0000000003']);
});

const sharedEvents = `app: shared
kafka: { brokers: "127.0.0.1:9092" }
topics:
  order-commands: { name: shared-order-commands, partitions: 4 }
  payment-commands: { name: shared-payment-commands, partitions: 4 }
  events: { name: shared-events, partitions: 4 }
  replies: { name: shared-replies, partitions: 4 }
processors:
  - name: orders
    type: aggregate
    aggregateType: Order
    input: order-commands
    output: { events: events, replies: replies }
    initialState: {}
    commands: { Place: { emit: [{ type: Placed, data: {} }] } }
    evolve: { Placed: { placed: "true" } }
  - name: payments
    type: aggregate
    aggregateType: Payment
    input: payment-commands
    output: { events: events, replies: replies }
    initialState: {}
    commands: { Charge: { emit: [{ type: Charged, data: {} }] } }
    evolve: { Charged: { charged: "true" } }
`;

// Found by the saga chaos workload: ids were derived from (topic, key, version) only, so order o1's first event and
// payment o1's first event had the same eventId and a consumer deduplicating by eventId dropped one of them.
test('two aggregate types sharing an events topic and an aggregate id never share an eventId', async (t) => {
  const d = await TopologyTestDriver.fromYaml(sharedEvents, FIXTURES);
  await d.pipe('order-commands', 'o1', command('Place', 'o1', {}));
  await d.pipe('payment-commands', 'o1', command('Charge', 'o1', {}));
  const evs = events(d);
  t.deepEqual(evs.map((e) => [e.aggregateType, e.aggregateId, e.aggregateVersion]), [['Order', 'o1', 1], ['Payment', 'o1', 1]]);
  t.not(evs[0]!.eventId, evs[1]!.eventId);
});

const flaky = (extra = '') => `app: flaky
kafka: { brokers: "127.0.0.1:9092" }
processing: { retry: { attempts: 2, initialBackoffMs: 1, maxBackoffMs: 4 } }
topics:
  commands: { name: flaky-commands, partitions: 2 }
  events: { name: flaky-events, partitions: 2 }
  replies: { name: flaky-replies, partitions: 2 }
processors:
  - name: things
    type: aggregate
    aggregateType: Thing
    input: commands
    output: { events: events, replies: replies }
    module: ./modules/flaky-decider.ts
${extra}`;

test('a decider that throws is retried; failing on every attempt dead-letters the command and the next commands go on', async (t) => {
  const d = await TopologyTestDriver.fromYaml(flaky(), FIXTURES);
  const broken = command('Do', 'x1', { failures: 99 });
  await d.pipe('commands', 'x1', broken);
  await d.pipe('commands', 'x1', command('Do', 'x1', { failures: 0 }));
  const dlq = d.deadLetters('things');
  t.is(dlq.length, 1);
  t.is(dlq[0]!.headers['foldstream.error.code'], 'HANDLER_FAILED');
  t.regex(dlq[0]!.headers['foldstream.error.message']!, /decider exploded on attempt 3 \(after 3 attempts\)/);
  t.deepEqual(JSON.parse(String(dlq[0]!.value)), broken, 'the original bytes');
  // nothing of the failed attempts leaked: one event, from the second command, at version 1
  t.deepEqual(events(d).map((e) => [e.eventType, e.aggregateVersion]), [['Done', 1]]);
  t.deepEqual(replies(d).map((r) => r.status), ['accepted']);
});

test('a decider that fails twice and then succeeds emits its events once, and the command is accepted once', async (t) => {
  const d = await TopologyTestDriver.fromYaml(flaky(), FIXTURES);
  await d.pipe('commands', 'x2', command('Do', 'x2', { failures: 2 }));
  t.deepEqual(d.deadLetters('things'), []);
  t.deepEqual(events(d).map((e) => [e.eventType, e.aggregateVersion]), [['Done', 1]]);
  t.deepEqual(replies(d).map((r) => [r.status, r.aggregateVersion]), [['accepted', 1]]);
  t.is(d.metric('things', 'command_outcomes', { outcome: 'accepted' }), 1);
});

test('the fail policy stops the task on a decider that keeps throwing', async (t) => {
  const d = await TopologyTestDriver.fromYaml(flaky('    onError: { policy: fail }\n'), FIXTURES);
  await d.pipe('commands', 'x1', command('Do', 'x1', { failures: 99 }));
  await d.pipe('commands', 'x1', command('Do', 'x1', { failures: 0 }));
  t.deepEqual(d.failedTasks(), [`things:${partitionForKey('x1', 2)}`]);
  t.deepEqual(events(d), []);
});

const tenants = (partitioning: string) => `app: mt
kafka: { brokers: "127.0.0.1:9092" }
modules: { root: ${ROOT} }
topics:
  commands: { name: mt-commands, partitions: 6 }
  events: { name: mt-events, partitions: 6 }
processors:
  - name: users
    type: aggregate
    aggregateType: User
    input: commands
    output: { events: events }
    module: ${join(ROOT, 'examples/users/user.ts')}
    partitioning: ${partitioning}
`;

test('tenant partitioning keys commands, state and events by tenantId:aggregateId and stamps tenantId on events', async (t) => {
  const d = await TopologyTestDriver.fromYaml(tenants('tenant'), FIXTURES);
  await d.pipe('commands', 'acme:u1', command('CreateUser', 'u1', { email: 'a@acme.example' }, { tenantId: 'acme' }));
  await d.pipe('commands', 'globex:u1', command('CreateUser', 'u1', { email: 'a@globex.example' }, { tenantId: 'globex' }));
  await d.pipe('commands', 'u1', command('CreateUser', 'u1', { email: 'a@x.example' }, { tenantId: 'acme' }));
  await d.pipe('commands', 'u1', command('CreateUser', 'u1', { email: 'a@x.example' }));
  const out = d.output<EventEnvelope>('events');
  t.deepEqual(out.map((r) => [r.key, r.partition, r.value.tenantId, r.value.aggregateId]), [
    ['acme:u1', partitionForKey('acme:u1', 6), 'acme', 'u1'],
    ['globex:u1', partitionForKey('globex:u1', 6), 'globex', 'u1'],
  ]);
  t.deepEqual([...(await d.store('users', 'state')).keys()], ['acme:u1', 'globex:u1']);
  t.deepEqual(d.deadLetters('users').map((r) => r.headers['foldstream.error.code']), ['KEY_MISMATCH', 'ENVELOPE_INVALID']);
  t.regex(d.deadLetters('users')[1]!.headers['foldstream.error.message']!, /missing field "tenantId"/);
});

test('a partitioner module chooses the partition of every event and keeps the aggregate id as the key', async (t) => {
  const d = await TopologyTestDriver.fromYaml(tenants(`{ module: ${join(FIXTURES, 'modules/partition-by-letter.ts')} }`), FIXTURES);
  for (const id of ['a1', 'b1', 'f1']) await d.pipe('commands', id, command('CreateUser', id, { email: `${id}@x.example` }));
  await d.pipe('commands', 'b1', command('UpgradeStatus', 'b1', { status: 'VIP' }));
  t.deepEqual(d.output('events').map((r) => [r.key, r.partition]), [['a1', 0], ['b1', 1], ['f1', 5], ['b1', 1]]);
});

test('the declarative User aggregate of docs/aggregates.md behaves like the decider module on the article scenarios', async (t) => {
  const doc = readFileSync(join(ROOT, 'docs/aggregates.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Declarative aggregates'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
  const yaml = `app: doc
kafka: { brokers: "127.0.0.1:9092" }
topics:
  commands: { name: doc-commands, partitions: 3 }
  events: { name: doc-events, partitions: 3 }
  replies: { name: doc-replies, partitions: 3 }
processors:
${block}`;
  const run = async (d: TopologyTestDriver) => {
    const c1 = command('CreateUser', 'u1', { email: 'ann@x.example', fullName: 'Ann' }, { commandId: 'c1', expectedVersion: 0 });
    for (const c of [
      c1,
      command('CreateUser', 'u1', { email: 'bob@x.example' }, { commandId: 'c2' }),
      command('UpdateEmail', 'u1', { email: 'ann@x.example' }, { commandId: 'c3' }),
      command('UpdateEmail', 'u1', { email: 'b@x.example' }, { commandId: 'c4', expectedVersion: 1 }),
      command('UpdateEmail', 'u1', { email: 'c@x.example' }, { commandId: 'c5', expectedVersion: 1 }),
      command('UpdateEmail', 'u2', { email: 'c@x.example' }, { commandId: 'c6' }),
      c1,
    ]) {
      await send(d, c);
    }
    return {
      replies: replies(d).map((r) => [r.commandId, r.status, r.code ?? '', r.aggregateVersion, r.eventIds.length]),
      events: events(d).map((e) => [e.eventType, e.eventVersion, e.aggregateVersion, e.data]),
    };
  };
  const declared = await run(await TopologyTestDriver.fromYaml(yaml, FIXTURES));
  const module = await run(await users());
  t.deepEqual(declared.replies, [
    ['c1', 'accepted', '', 1, 1],
    ['c2', 'rejected', 'USER_EXISTS', 1, 0],
    ['c3', 'accepted', '', 1, 0],
    ['c4', 'accepted', '', 2, 1],
    ['c5', 'conflict', 'CONCURRENCY_CONFLICT', 2, 0],
    ['c6', 'rejected', 'USER_NOT_FOUND', 0, 0],
    ['c1', 'accepted', '', 1, 1],
  ]);
  t.deepEqual(declared.replies, module.replies);
  t.deepEqual(declared.events, module.events);
});
