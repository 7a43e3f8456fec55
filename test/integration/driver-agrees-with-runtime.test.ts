// The TopologyTestDriver and the runtime are one implementation: the same input records — a few hundred random
// commands of the users example, bad commands, and events written straight to the events topic (old versions to
// upcast, too-new versions, bad ones) — through the driver and through the App on the real broker give the same
// records on every output topic (per partition and key, in order) and the same stores (the runtime's read through
// their changelogs). Record timestamps are given explicitly, so they agree too.
//
// One thing legitimately differs, and is compared by what is determined instead: the group stage of users-by-status
// (its repartition topic and its view topic) receives, for one group key, changes from all 12 first-stage tasks, each
// with its own transactional producer, so their interleaving on the broker depends on timing; the driver delivers
// in one global order. There, the repartition records of a key are compared as a multiset (each source's own
// changes in order), and the group views by their version sequence (1..n) and final value.
import test from 'ava';
import type { Message } from 'kafkajs';
import { App } from '../../src/app/app.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { internalTopics } from '../../src/topology/names.ts';
import { changelogState } from '../helpers/counting-app.ts';
import { byKey, kafka, readAll, type ReadRecord, type Seen } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { prng } from '../helpers/prng.ts';
import { command, randomCommands } from '../helpers/user-model.ts';
import { usersApp, waitForConsumed } from '../helpers/users-app.ts';

interface Input {
  topic: 'commands' | 'events';
  key: string | null;
  value: Buffer | null;
  partition: number;
  timestamp: number;
  headers: Record<string, string>;
}

const PARTITIONS = 12;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** Events written straight to the events topic, before any command: upcasts, too-new versions, bad records. */
function directEvents(base: number): Input[] {
  const event = (id: string, eventVersion: number, data: Record<string, unknown>) => ({
    eventId: `direct-${id}`,
    eventType: 'UserCreated',
    eventVersion,
    aggregateType: 'User',
    aggregateId: id,
    aggregateVersion: 1,
    timestamp: '2025-06-01T00:00:00.000Z',
    data,
  });
  const records: [string | null, Buffer | null][] = [
    ['legacy-1', json(event('legacy-1', 1, { email: 'l1@x.example', name: 'Lea' }))],
    ['legacy-2', json(event('legacy-2', 1, { email: 'l2@x.example', name: 'Leo', status: 'GOLD' }))],
    ['future-1', json(event('future-1', 3, { email: 'f1@x.example', fullName: 'Fay', status: 'ACTIVE' }))],
    ['bad-e1', Buffer.from('not json')],
    ['bad-e2', json({ ...event('bad-e2', 2, {}), aggregateVersion: undefined })],
    [null, json(event('bad-e3', 2, { status: 'ACTIVE' }))],
    ['bad-e4', json(event('someone-else', 2, { status: 'ACTIVE' }))],
    ['bad-e5', null],
  ];
  return records.map(([key, value], i) => ({ topic: 'events', key, value, partition: key ? partitionForKey(key, PARTITIONS) : 4, timestamp: base + i, headers: { origin: 'direct' } }));
}

/** Random commands with bad ones mixed in at random places; every tenth carries a header, some a timestamp. */
function commands(base: number, seed: number): Input[] {
  const rnd = prng(seed);
  const good = randomCommands(300, 20, seed, 'u');
  const bad: [string | null, Buffer | null][] = [
    ['u-1', Buffer.from('{"commandId": ')],
    ['u-2', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
    ['u-3', json({ commandType: 'CreateUser', aggregateId: 'u-3', data: {} })],
    ['u-4', json({ ...command('CreateUser', 'u-4', { email: 'x@x.example' }), expectedVersion: '1' })],
    [null, json(command('CreateUser', 'u-5', { email: 'x@x.example' }))],
    ['u-6', json(command('CreateUser', 'u-7', { email: 'x@x.example' }))],
    ['u-8', json(command('CreateUser', 'u-8', { email: 'x@x.example', blob: 'x'.repeat(150_000) }))],
    ['u-9', null],
  ];
  const records: [string | null, Buffer | null][] = good.map((c) => {
    const withTime = rnd() < 0.5 ? { ...c, timestamp: new Date(base - 86_400_000).toISOString() } : c;
    return [c.aggregateId, json(withTime)];
  });
  for (const b of bad) records.splice(Math.floor(rnd() * records.length), 0, b);
  return records.map(([key, value], i) => ({
    topic: 'commands',
    key,
    value,
    partition: key ? partitionForKey(key, PARTITIONS) : i % PARTITIONS,
    timestamp: base + 1000 + i * 10,
    headers: i % 10 === 0 ? { trace: `t-${i}` } : {},
  }));
}

const fromBroker = (r: ReadRecord, raw: boolean): Seen => ({
  partition: r.partition,
  key: r.key,
  value: r.value === null ? null : raw ? r.value.toString('base64') : JSON.parse(r.value.toString('utf8')),
  headers: r.headers,
  timestamp: r.timestamp,
});

test('the same inputs through the driver and through the runtime on a broker give the same outputs and the same stores', async (t) => {
  const env = await usersApp({ maxRecordBytes: 100_000 });
  const topology = env.loaded.topology;
  const app = new App(env.loaded, { log: memoryLogger(), stateDir: env.stateDir('a'), httpPort: 0 });
  try {
    // recent timestamps: the broker's time-based retention must not delete what the test reads back
    const base = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
    const inputs = [...directEvents(base), ...commands(base, 4242)];

    // the driver's wall clock near the runtime's: stream time counts at most processing.maxClockSkewMs ahead of it
    const driver = await TopologyTestDriver.fromLoaded(env.loaded, { wallClock: Date.now() });
    for (const r of inputs) await driver.pipe(r.topic, r.key, r.value, { raw: true, partition: r.partition, timestamp: r.timestamp, headers: r.headers });

    await app.start();
    const producer = kafka('agreement-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      for (const topic of ['events', 'commands'] as const) {
        const messages: Message[] = inputs
          .filter((r) => r.topic === topic)
          .map((r) => ({ key: r.key, value: r.value, partition: r.partition, timestamp: String(r.timestamp), headers: r.headers }));
        for (let i = 0; i < messages.length; i += 100) await producer.send({ topic: env.topic(topic), acks: -1, messages: messages.slice(i, i + 100) });
      }
    } finally {
      await producer.disconnect();
    }
    const repartition = `${env.app}-users-by-status-repartition`;
    await waitForConsumed(`${env.app}-users`, env.topic('commands'));
    await waitForConsumed(`${env.app}-user-view`, env.topic('events'));
    await waitForConsumed(`${env.app}-users-by-status`, env.topic('events'));
    await waitForConsumed(`${env.app}-users-by-status-group`, repartition);

    const dlqs = internalTopics(topology).filter((it) => it.purpose === 'dlq').map((it) => it.name);
    const exact = [env.topic('replies'), env.topic('events'), env.topic('user-view'), ...dlqs];
    const raw = new Set(dlqs);
    const fromDriver = (topic: string): Seen[] =>
      driver.output(topic).map((r) => ({
        partition: r.partition,
        key: r.key,
        value: Buffer.isBuffer(r.value) ? r.value.toString('base64') : r.value,
        headers: r.headers,
        timestamp: r.timestamp,
      }));
    const runtime = await readAll([...exact, repartition, env.topic('users-by-status')]);
    // the events topic also holds the records written straight to it; the driver's output() is what processors wrote
    const read = (topic: string) =>
      runtime
        .filter((r) => r.topic === topic && !(topic === env.topic('events') && r.headers.origin === 'direct'))
        .sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))
        .map((r) => fromBroker(r, raw.has(topic)));

    // the run covers what it claims to: outcomes of every kind, dead letters of both processors that get bad input
    const replies = read(env.topic('replies')).map((r) => (r.value as { status: string }).status);
    t.deepEqual([...new Set(replies)].sort(), ['accepted', 'conflict', 'rejected']);
    t.is(read(`${env.app}-users-dlq`).length, 8);
    t.is(read(`${env.app}-user-view-dlq`).length, 6);

    for (const topic of exact) t.deepEqual(byKey(fromDriver(topic)), byKey(read(topic)), topic);

    const multiset = (rs: Seen[]) => Object.fromEntries(Object.entries(byKey(rs)).map(([k, v]) => [k, v.map((r) => JSON.stringify(r)).sort()]));
    t.deepEqual(multiset(fromDriver(repartition)), multiset(read(repartition)), repartition);
    const groups = (rs: Seen[]) =>
      Object.fromEntries(Object.entries(byKey(rs)).map(([k, v]) => [k, { versions: v.map((r) => r.headers['foldstream.view.version']), last: v.at(-1)!.value }]));
    t.deepEqual(groups(fromDriver(env.topic('users-by-status'))), groups(read(env.topic('users-by-status'))), 'users-by-status');

    for (const it of internalTopics(topology).filter((x) => x.purpose === 'changelog')) {
      const processor = it.stage ? `${it.processor}-${it.stage}` : it.processor;
      // the command-expiry index notes the wall-clock time each command was handled, which differs by nature
      const comparable = (v: unknown) => (it.store === 'command-expiry' && v !== null && typeof v === 'object' ? { ...v, handledAt: 'a wall-clock time' } : v);
      const inDriver = Object.fromEntries([...(await driver.store(processor, it.store!))].map(([k, v]) => [k, comparable(v)]));
      const fromChangelog = Object.fromEntries([...(await changelogState(it.name))].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, comparable(v)]));
      t.true(Object.keys(fromChangelog).length > 0, `${it.name} has data`);
      t.deepEqual(inDriver, fromChangelog, `${processor}.${it.store}`);
    }
  } finally {
    await app.stop();
    await env.cleanup();
  }
});
