// The users example end to end on the real broker: the aggregate's replies and events, the user-view projection,
// upcasting and dead letters, all read back with read_committed. One app serves the tests; each uses its own users.
import test from 'ava';
import type { Message } from 'kafkajs';
import type { EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { App } from '../../src/app/app.ts';
import { kafka, readAll, type ReadRecord } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { metricValue } from '../helpers/processes.ts';
import { command, type Command } from '../helpers/user-model.ts';
import { CommandClient, latestByKey, readUntil, usersApp, type UsersApp } from '../helpers/users-app.ts';

let env: UsersApp;
let app: App;
let client: CommandClient;

test.before(async () => {
  // small enough that an oversize record still fits the broker's own limit (1 MB)
  env = await usersApp({ maxRecordBytes: 100_000 });
  app = new App(env.loaded, { log: memoryLogger(), stateDir: env.stateDir('a'), httpPort: 0 });
  await app.start();
  client = await CommandClient.start(env.topic('commands'), env.topic('replies'));
});

test.after.always(async () => {
  await client?.close();
  await app?.stop();
  await env?.cleanup();
});

/** Sends commands one after the other (each after the previous reply), like a client reading its own writes. */
async function run(...commands: Command[]): Promise<Reply[]> {
  const out: Reply[] = [];
  for (const c of commands) {
    await client.send([c]);
    const replies = await client.waitFor([c]);
    out.push(replies[0]!.at(-1)!);
  }
  return out;
}

const eventsOf = async (id: string): Promise<EventEnvelope[]> =>
  (await readAll([env.topic('events')])).filter((r) => r.key === id).map((r) => JSON.parse(String(r.value)) as EventEnvelope);

/** Writes records as some other (not transactional) producer would, in order. */
async function produce(topic: string, messages: Message[]): Promise<void> {
  const producer = kafka('other-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}

const json = (r: ReadRecord) => JSON.parse(String(r.value)) as Record<string, unknown>;

// serial tests run first: this one also waits out the groups' first join before the others send
test.serial('a command sent to the running app gets its reply on the replies topic', async (t) => {
  const [r] = await run(command('CreateUser', 'warmup', { email: 'warm@x.example' }));
  t.is(r!.status, 'accepted');
});

test('creating a user twice: the second is rejected with the reason, and one UserCreated is on the events topic', async (t) => {
  const [a, b] = await run(command('CreateUser', 'twice-1', { email: 'ann@x.example' }), command('CreateUser', 'twice-1', { email: 'bob@x.example' }));
  t.like(a, { status: 'accepted', aggregateVersion: 1 });
  t.like(b, { status: 'rejected', code: 'USER_EXISTS', reason: 'user twice-1 already exists', aggregateVersion: 1, eventIds: [] });
  const events = await eventsOf('twice-1');
  t.deepEqual(events.map((e) => [e.eventType, e.aggregateVersion, e.data.email]), [['UserCreated', 1, 'ann@x.example']]);
  t.deepEqual(a!.eventIds, [events[0]!.eventId]);
});

test('UpdateEmail to the same email is accepted and emits no event', async (t) => {
  const [, same] = await run(command('CreateUser', 'same-1', { email: 'ann@x.example' }), command('UpdateEmail', 'same-1', { email: 'ann@x.example' }, { expectedVersion: 1 }));
  t.like(same, { status: 'accepted', aggregateVersion: 1, eventIds: [] });
  t.deepEqual((await eventsOf('same-1')).map((e) => e.eventType), ['UserCreated']);
});

test('two UpdateEmail commands with the same stale expectedVersion: one is accepted, the other gets a conflict and no event', async (t) => {
  await run(command('CreateUser', 'race-1', { email: 'ann@x.example' }));
  // both sent at once, both based on version 1
  const a = command('UpdateEmail', 'race-1', { email: 'a@x.example' }, { expectedVersion: 1 });
  const b = command('UpdateEmail', 'race-1', { email: 'b@x.example' }, { expectedVersion: 1 });
  await client.send([a, b]);
  const [ras, rbs] = await client.waitFor([a, b]);
  const [ra, rb] = [ras![0], rbs![0]];
  t.deepEqual([ra!.status, rb!.status].sort(), ['accepted', 'conflict']);
  const conflict = ra!.status === 'conflict' ? ra! : rb!;
  t.like(conflict, { code: 'CONCURRENCY_CONFLICT', aggregateVersion: 2, eventIds: [] });
  const changes = (await eventsOf('race-1')).filter((e) => e.eventType === 'EmailChanged');
  t.is(changes.length, 1);
  t.is(changes[0]!.causationId, ra!.status === 'accepted' ? a.commandId : b.commandId);
});

test('a repeated commandId gets the same reply again and no second event', async (t) => {
  const create = command('CreateUser', 'dup-1', { email: 'ann@x.example' });
  const upgrade = command('UpgradeStatus', 'dup-1', { status: 'GOLD' }, { expectedVersion: 1 });
  await run(create, upgrade);
  await client.send([upgrade, create]);
  const [ups, creates] = await client.waitFor([upgrade, create, upgrade, create]);
  t.is(ups!.length, 2);
  t.deepEqual(ups![1], ups![0]);
  t.deepEqual(creates![1], creates![0]);
  t.deepEqual((await eventsOf('dup-1')).map((e) => [e.eventType, e.aggregateVersion]), [['UserCreated', 1], ['StatusUpgraded', 2]]);
  t.true(metricValue(await app.registry.metrics(), 'foldstream_command_outcomes_total', { processor: 'users', outcome: 'duplicate' }) >= 2);
});

test('the projection skips events it already applied (counted) and the user view equals a model of the events', async (t) => {
  const id = 'proj-1';
  await run(
    command('CreateUser', id, { email: 'ann@x.example', fullName: 'Ann' }),
    command('UpdateEmail', id, { email: 'ann@y.example' }),
    command('UpgradeStatus', id, { status: 'SILVER' }),
  );
  const events = await eventsOf(id);
  // replay the first two events into the events topic, as a producer retrying without idempotence would
  await produce(env.topic('events'), events.slice(0, 2).map((e) => ({ key: id, value: JSON.stringify(e) })));
  await run(command('UpgradeStatus', id, { status: 'VIP' }));
  const records = await readUntil([env.topic('user-view')], (rs) => rs.some((r) => r.key === id && r.headers['foldstream.view.version'] === '4'), 'the view at version 4');
  const mine = records.filter((r) => r.key === id);
  t.deepEqual(mine.map((r) => r.headers['foldstream.view.version']), ['1', '2', '3', '4'], 'one view record per applied event, none for the replays');
  const last = (await eventsOf(id)).find((e) => e.aggregateVersion === 4)!;
  t.deepEqual(latestByKey(mine)[id], {
    id,
    email: 'ann@y.example',
    fullName: 'Ann',
    status: 'VIP',
    createdAt: events[0]!.timestamp,
    updatedAt: last.timestamp,
    emailChanges: 1,
    statusHistory: ['SILVER', 'VIP'],
  });
  t.true(metricValue(await app.registry.metrics(), 'foldstream_projection_events_total', { processor: 'user-view', outcome: 'already_applied' }) >= 2);
});

test('the projection resumes after the commit marker that ends each aggregate transaction, without seeking back', async (t) => {
  const id = 'markers-1';
  await run(
    command('CreateUser', id, { email: 'mo@x.example', fullName: 'Mo' }),
    command('UpdateEmail', id, { email: 'mo@y.example' }),
    command('UpgradeStatus', id, { status: 'GOLD' }),
  );
  await readUntil([env.topic('user-view')], (rs) => rs.some((r) => r.key === id && r.headers['foldstream.view.version'] === '3'), 'the view at version 3');
  // every event arrived in a transaction of its own, so each batch of the projection ended before a commit marker
  const log = (app.log as ReturnType<typeof memoryLogger>).events('task.seek_back').filter((l) => l.processor === 'user-view');
  t.deepEqual(log, [], 'no fetch started past the position');
});

test('a v1 UserCreated is upcast before the projection sees it; a too-new event goes to the DLQ and the next event is processed', async (t) => {
  const base = { eventType: 'UserCreated', aggregateType: 'User', aggregateVersion: 1, timestamp: '2024-05-01T00:00:00.000Z' };
  const v1 = { ...base, eventId: 'legacy-1', eventVersion: 1, aggregateId: 'legacy-1', data: { email: 'old@x.example', name: 'Olga' } };
  const v9 = { ...base, eventId: 'future-1', eventVersion: 9, aggregateId: 'future-1', data: { email: 'new@x.example' } };
  const v2 = { ...base, eventId: 'after-1', eventVersion: 2, aggregateId: 'after-1', data: { email: 'a@x.example', fullName: 'Al', status: 'ACTIVE' } };
  await produce(env.topic('events'), [v1, v9, v2].map((e) => ({ key: e.aggregateId, value: JSON.stringify(e) })));
  const views = await readUntil([env.topic('user-view')], (rs) => rs.some((r) => r.key === 'legacy-1') && rs.some((r) => r.key === 'after-1'), 'the upcast and the next view');
  t.like(json(views.find((r) => r.key === 'legacy-1')!), { fullName: 'Olga', status: 'ACTIVE', email: 'old@x.example' });
  t.false(views.some((r) => r.key === 'future-1'));
  const dlq = (await readAll([`${env.app}-user-view-dlq`])).filter((r) => r.key === 'future-1');
  t.is(dlq.length, 1);
  t.is(dlq[0]!.headers['foldstream.error.code'], 'EVENT_VERSION_UNSUPPORTED');
  t.deepEqual(json(dlq[0]!), v9);
});

test('each kind of malformed command lands in the DLQ with its reason and original bytes, and the command after it is processed', async (t) => {
  const oversize = JSON.stringify(command('CreateUser', 'bad-5', { email: 'x@x.example', blob: 'x'.repeat(150_000) }));
  const bad = [
    { key: 'bad-1', value: '{"commandId": ', code: 'DESERIALIZATION_FAILED' },
    { key: 'bad-2', value: JSON.stringify({ commandType: 'CreateUser', aggregateId: 'bad-2', data: {} }), code: 'ENVELOPE_INVALID' },
    { key: null, value: JSON.stringify(command('CreateUser', 'bad-3', { email: 'x@x.example' })), code: 'KEY_MISSING' },
    { key: 'bad-4', value: JSON.stringify(command('CreateUser', 'someone-else', { email: 'x@x.example' })), code: 'KEY_MISMATCH' },
    { key: 'bad-5', value: oversize, code: 'RECORD_TOO_LARGE' },
  ];
  // one partition for all, so "after" means after every bad one
  const partition = 0;
  const next = command('CreateUser', 'after-bad', { email: 'ok@x.example' });
  await produce(env.topic('commands'), [
    ...bad.map((b) => ({ key: b.key, value: b.value, partition, headers: { 'bad-kind': b.code } })),
    { key: next.aggregateId, value: JSON.stringify(next), partition },
  ]);
  const reply = (await client.waitFor([next]))[0]![0];
  t.is(reply!.status, 'accepted');
  const dlq = (await readAll([`${env.app}-users-dlq`])).filter((r) => r.headers['bad-kind']);
  t.deepEqual(dlq.map((r) => r.headers['foldstream.error.code']), bad.map((b) => b.code));
  for (const [i, r] of dlq.entries()) {
    t.is(r.value?.toString(), bad[i]!.value, `${bad[i]!.code}: the original bytes`);
    t.is(r.key, bad[i]!.key);
    t.like(r.headers, { 'bad-kind': bad[i]!.code, 'foldstream.source.topic': env.topic('commands'), 'foldstream.source.partition': '0', 'foldstream.processor': 'users' });
    t.true((r.headers['foldstream.error.message'] ?? '').length > 10);
  }
  const metrics = await app.registry.metrics();
  for (const b of bad) t.true(metricValue(metrics, 'foldstream_dlq_records_total', { processor: 'users', code: b.code }) >= 1, b.code);
});

test('each kind of malformed event lands in the projection DLQ with its reason, and the event after it is processed', async (t) => {
  const good = { eventId: 'ok-1', eventType: 'UserCreated', eventVersion: 2, aggregateType: 'User', aggregateId: 'ev-ok', aggregateVersion: 1, timestamp: '2026-01-01T00:00:00.000Z', data: { email: 'ok@x.example', fullName: 'Ok', status: 'ACTIVE' } };
  const bad = [
    { key: 'ev-1', value: 'not json', code: 'DESERIALIZATION_FAILED' },
    { key: 'ev-2', value: JSON.stringify({ ...good, aggregateId: 'ev-2', aggregateVersion: undefined }), code: 'ENVELOPE_INVALID' },
    { key: null, value: JSON.stringify({ ...good, aggregateId: 'ev-3' }), code: 'KEY_MISSING' },
    { key: 'ev-4', value: JSON.stringify({ ...good, aggregateId: 'someone-else' }), code: 'KEY_MISMATCH' },
  ];
  await produce(env.topic('events'), [
    ...bad.map((b) => ({ key: b.key, value: b.value, partition: 1, headers: { 'bad-kind': b.code } })),
    { key: good.aggregateId, value: JSON.stringify(good), partition: 1 },
  ]);
  await readUntil([env.topic('user-view')], (rs) => rs.some((r) => r.key === 'ev-ok'), 'the view of the good event');
  const dlq = (await readAll([`${env.app}-user-view-dlq`])).filter((r) => r.headers['bad-kind']);
  t.deepEqual(dlq.map((r) => [r.headers['foldstream.error.code'], r.value?.toString()]), bad.map((b) => [b.code, b.value]));
  for (const r of dlq) t.like(r.headers, { 'foldstream.source.topic': env.topic('events'), 'foldstream.source.partition': '1', 'foldstream.processor': 'user-view' });
});
