// Idempotent retries on the real broker (issue 14, defects 1 and 2): a record dated years ahead of the wall clock, or
// years back, does not make the aggregate forget the commandIds of its partition (the retry of a command is answered
// with its first reply, not run again), and a commandId is one aggregate's: the same id on another aggregate of the
// same partition is processed for that aggregate, and another command under an id the aggregate has used is
// COMMAND_ID_REUSED. Commands and replies go through the broker, read with read_committed.
import test from 'ava';
import type { Message } from 'kafkajs';
import { App } from '../../src/app/app.ts';
import type { EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { kafka, readAll } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { command, type Command } from '../helpers/user-model.ts';
import { CommandClient, usersApp, type UsersApp } from '../helpers/users-app.ts';

const YEAR = 365 * 86_400_000;
let env: UsersApp;
let app: App;
let client: CommandClient;

test.before(async () => {
  env = await usersApp({}, (doc) => {
    // Kafka 4 refuses record times more than an hour ahead by default (message.timestamp.after.max.ms): the commands
    // topic must accept them (outputs are dated at most maxClockSkewMs ahead, so the other topics would not need it:
    // output-timestamps.test.ts)
    for (const topic of Object.values(doc.topics)) topic.config = { ...topic.config, 'message.timestamp.after.max.ms': String(10 * YEAR) };
    // a short retention: with stream time alone, the far-ahead record expires everything at once
    const users = doc.processors.find((p) => p.name === 'users')!;
    users.commandRetentionMs = 600_000;
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

/** Ids that share a partition of the 12 commands partitions (and one that does not). */
function samePartition(prefix: string, n: number): string[] {
  const byPartition = new Map<number, string[]>();
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    const p = partitionForKey(id, 12);
    const ids = [...(byPartition.get(p) ?? []), id];
    if (ids.length === n) return ids;
    byPartition.set(p, ids);
  }
}

/** Sends a command with a record timestamp of its own, as a producer with a wrong clock would, and waits for its reply. */
async function sendAt(c: Command, timestamp: number): Promise<Reply> {
  const producer = kafka('skewed-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const message: Message = { key: c.aggregateId, value: JSON.stringify(c), timestamp: String(timestamp) };
    await producer.send({ topic: env.topic('commands'), acks: -1, messages: [message] });
  } finally {
    await producer.disconnect();
  }
  return (await client.waitFor([c]))[0]!.at(-1)!;
}

async function run(c: Command): Promise<Reply[]> {
  const before = client.replies.get(JSON.stringify([c.aggregateId, c.commandId]))?.length ?? 0;
  await client.send([c]);
  for (;;) {
    const replies = client.replies.get(JSON.stringify([c.aggregateId, c.commandId])) ?? [];
    if (replies.length > before) return replies;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const eventsOf = async (id: string): Promise<EventEnvelope[]> =>
  (await readAll([env.topic('events')])).filter((r) => r.key === id).map((r) => JSON.parse(String(r.value)) as EventEnvelope);

test.serial('a record dated four years ahead does not make the partition forget a commandId: the retry gets its first reply', async (t) => {
  const [a, b] = samePartition('ahead', 2);
  const pay = command('CreateUser', a!, { email: 'a@x.example' }, { commandId: 'pay-1' });
  const [first] = await run(pay);
  t.like(first, { status: 'accepted', aggregateVersion: 1 });
  t.like(await sendAt(command('CreateUser', b!, { email: 'b@x.example' }), Date.now() + 4 * YEAR), { status: 'accepted' });
  const replies = await run(pay);
  t.deepEqual(replies.at(-1), first, 'the retry is answered with the first reply');
  t.is((await eventsOf(a!)).length, 1, 'and the command did not run twice');
});

test.serial('a command dated four years back is remembered: its retry after newer records gets its first reply', async (t) => {
  const [a, b] = samePartition('behind', 2);
  const old = command('CreateUser', a!, { email: 'a@x.example' }, { commandId: 'pay-2' });
  const first = await sendAt(old, Date.now() - 4 * YEAR);
  t.like(first, { status: 'accepted', aggregateVersion: 1 });
  // newer records move stream time on (past retention boundaries, after the old record's time)
  await run(command('CreateUser', b!, { email: 'b@x.example' }));
  const replies = await run(old);
  t.deepEqual(replies.at(-1), first);
  t.is((await eventsOf(a!)).length, 1);
});

test('a commandId is one aggregate\'s: the same id on another aggregate of the partition runs for it; another command under it is COMMAND_ID_REUSED', async (t) => {
  const [a, b] = samePartition('ids', 2);
  const [ra] = await run(command('CreateUser', a!, { email: 'a@x.example' }, { commandId: 'deposit-1' }));
  const [rb] = await run(command('CreateUser', b!, { email: 'b@x.example' }, { commandId: 'deposit-1' }));
  t.like(ra, { commandId: 'deposit-1', status: 'accepted', aggregateId: a, aggregateVersion: 1 });
  t.like(rb, { commandId: 'deposit-1', status: 'accepted', aggregateId: b, aggregateVersion: 1 });
  t.deepEqual(rb!.eventIds, (await eventsOf(b!)).map((e) => e.eventId));
  const reused = await run(command('UpgradeStatus', a!, { status: 'GOLD' }, { commandId: 'deposit-1' }));
  t.like(reused.at(-1), { commandId: 'deposit-1', status: 'rejected', code: 'COMMAND_ID_REUSED', aggregateId: a, aggregateVersion: 1, eventIds: [] });
  t.deepEqual((await eventsOf(a!)).map((e) => e.eventType), ['UserCreated']);
});
