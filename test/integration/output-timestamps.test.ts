// Outputs are dated at most processing.maxClockSkewMs past the wall clock (TaskContext), on the real broker: Kafka 4
// refuses a record dated more than message.timestamp.after.max.ms (default one hour) ahead, and outputs inherit their
// input record's time. A commands topic created with that limit raised accepts a command dated years ahead; only it
// has the raised limit, so without the hold every transaction of its task would fail on the replies, events and
// dead-letter topics, and the partition would be stuck for good. Here the command gets its reply and its event, a
// bad record dated as far ahead gets its dead letter, and the next command of the partition is processed.
import test from 'ava';
import { App } from '../../src/app/app.ts';
import type { EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { dlqTopic } from '../../src/topology/names.ts';
import { kafka, readAll, type ReadRecord } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { command, type Command } from '../helpers/user-model.ts';
import { CommandClient, readUntil, usersApp, type UsersApp } from '../helpers/users-app.ts';

const YEAR = 365 * 86_400_000;
/** long enough for a loaded machine, bounded so that a stuck partition fails the test instead of hanging it */
const WAIT_MS = 60_000;
let env: UsersApp;
let app: App;
let client: CommandClient;

test.before(async () => {
  env = await usersApp({}, (doc) => {
    // only the commands topic accepts records dated far ahead; the output topics keep Kafka's default (one hour)
    doc.topics.commands!.config = { ...doc.topics.commands!.config, 'message.timestamp.after.max.ms': String(10 * YEAR) };
  });
  app = new App(env.loaded, { log: memoryLogger(), stateDir: env.stateDir('a'), httpPort: 0 });
  await app.start();
  client = await CommandClient.start(env.topic('commands'), env.topic('replies'));
});

test.after.always(async () => {
  await client?.close();
  await app?.stop();
  await env?.cleanup();
});

/** Writes a record to the commands topic with a record time of its own, as a producer with a wrong clock would. */
async function sendAt(key: string, value: string, timestamp: number): Promise<void> {
  const producer = kafka('skewed-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic: env.topic('commands'), acks: -1, messages: [{ key, value, timestamp: String(timestamp) }] });
  } finally {
    await producer.disconnect();
  }
}

const reply = async (c: Command): Promise<Reply> => (await client.waitFor([c], WAIT_MS))[0]!.at(-1)!;
const recordsOf = (records: ReadRecord[], key: string) => records.filter((r) => r.key === key);

test('a command dated ten years ahead gets its reply and its event, dated no later than the wall clock + maxClockSkewMs; a bad record as far ahead is dead-lettered; the next command is processed', async (t) => {
  const ahead = Date.now() + 10 * YEAR;
  const create = command('CreateUser', 'skewed-1', { email: 'a@x.example', fullName: 'A' });
  await sendAt(create.aggregateId, JSON.stringify(create), ahead);
  t.like(await reply(create), { status: 'accepted', aggregateVersion: 1 });
  const held = Date.now() + 60_000; // processing.maxClockSkewMs, default: a bound on what was written before now

  const events = recordsOf(await readUntil([env.topic('events')], (rs) => recordsOf(rs, 'skewed-1').length === 1, 'the event', WAIT_MS), 'skewed-1');
  t.true(events[0]!.timestamp <= held, `event record time ${new Date(events[0]!.timestamp).toISOString()}`);
  // the event's own time is the command's record time, as before: only the record time is held
  t.is((JSON.parse(String(events[0]!.value)) as EventEnvelope).timestamp, new Date(ahead).toISOString());
  const replies = recordsOf(await readAll([env.topic('replies')]), 'skewed-1');
  t.true(replies.length === 1 && replies[0]!.timestamp <= held);

  // a record that is not a command, as far ahead: its dead letter keeps the original time in a header
  await sendAt('skewed-1', 'not json', ahead);
  const dlq = dlqTopic(env.app, 'users');
  const dead = recordsOf(await readUntil([dlq], (rs) => recordsOf(rs, 'skewed-1').length === 1, 'the dead letter', WAIT_MS), 'skewed-1');
  t.is(dead[0]!.headers['foldstream.source.timestamp'], String(ahead));
  t.true(dead[0]!.timestamp <= Date.now() + 60_000);

  // the partition is not stuck: the next command of the aggregate (sent now) is processed
  const upgrade = command('UpgradeStatus', 'skewed-1', { status: 'GOLD' });
  await client.send([upgrade]);
  t.like(await reply(upgrade), { status: 'accepted', aggregateVersion: 2 });
});
