/**
 * Sends sample commands to the users example (topology.yaml) and prints each reply, then the user's view and the
 * users per status, so you can watch state change:
 *
 *   npm start                                   # one terminal: the app
 *   npm run example:commands                    # another: the commands
 *   (that is `npx tsx examples/users/send-commands.ts [topology.yaml]`)
 *
 * It creates a user, changes the email, repeats it (accepted, no event), upgrades the status, sends a command with a
 * stale expectedVersion (conflict), resends a command with the same commandId (the same reply again) and creates the
 * user a second time (rejected).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import type { CommandEnvelope, Reply } from '../../src/serde/envelope.ts';
import { loadTopology } from '../../src/topology/load.ts';

const { Kafka, logLevel } = kafkajs;

const file = process.argv[2] ?? fileURLToPath(new URL('../../topology.yaml', import.meta.url));
const t = loadTopology(file).topology;
const topic = (alias: string) => {
  const d = t.topics[alias];
  if (!d) throw new Error(`${file} declares no topic "${alias}"`);
  return d.name;
};
const brokers = Array.isArray(t.kafka.brokers) ? t.kafka.brokers : t.kafka.brokers.split(',').map((b) => b.trim());
const kafka = new Kafka({ brokers, clientId: 'send-commands', logLevel: logLevel.NOTHING });

const replies = new Map<string, Reply>();
const views = new Map<string, { value: unknown; version: number }>();
let notify = () => {};

const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
// read_committed: a reply or view of an aborted transaction never shows
const consumer = kafka.consumer({ groupId: `send-commands-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 100 });
await producer.connect();
await consumer.connect();
for (const name of [topic('replies'), topic('user-view'), topic('users-by-status')]) await consumer.subscribe({ topic: name, fromBeginning: true });
await consumer.run({
  eachMessage: async ({ topic: from, message }) => {
    const key = message.key?.toString() ?? '';
    const value = message.value ? (JSON.parse(message.value.toString()) as unknown) : null;
    if (from === topic('replies')) replies.set((value as Reply).commandId, value as Reply);
    else views.set(`${from}/${key}`, { value, version: Number(message.headers?.['foldstream.view.version']?.toString() ?? 0) });
    notify();
  },
});

async function until<T>(what: string, get: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs / 1000} s: is the app running (npm start)?`);
    await new Promise<void>((r) => {
      notify = r;
      setTimeout(r, 200);
    });
  }
}

const userId = `user-${randomBytes(3).toString('hex')}`;

async function send(commandType: string, data: Record<string, unknown>, opts: { expectedVersion?: number; commandId?: string; note?: string } = {}): Promise<Reply> {
  const command: CommandEnvelope = {
    commandId: opts.commandId ?? randomUUID(),
    commandType,
    aggregateId: userId,
    userId: 'send-commands',
    timestamp: new Date().toISOString(),
    data,
  };
  if (opts.expectedVersion !== undefined) command.expectedVersion = opts.expectedVersion;
  const expected = opts.expectedVersion === undefined ? '' : ` expectedVersion ${opts.expectedVersion}`;
  console.log(`→ ${commandType} ${JSON.stringify(data)}${expected}${opts.note ? `  (${opts.note})` : ''}`);
  replies.delete(command.commandId);
  await producer.send({ topic: topic('commands'), acks: -1, messages: [{ key: userId, value: JSON.stringify(command) }] });
  const reply = await until(`reply to ${commandType}`, () => replies.get(command.commandId));
  const events = reply.eventIds.length ? `, events ${reply.eventIds.join(', ')}` : ', no events';
  console.log(`← ${reply.status}${reply.reason ? `: ${reply.reason}` : ''} — version ${reply.aggregateVersion}${events}\n`);
  return reply;
}

try {
  console.log(`user ${userId}, commands to ${topic('commands')}, replies from ${topic('replies')}\n`);
  await send('CreateUser', { email: `${userId}@example.com`, fullName: 'Ann Example' }, { expectedVersion: 0 });
  await send('UpdateEmail', { email: `${userId}@example.org` }, { expectedVersion: 1 });
  await send('UpdateEmail', { email: `${userId}@example.org` }, { expectedVersion: 2, note: 'the same address: accepted, nothing changes' });
  const upgrade = randomUUID();
  await send('UpgradeStatus', { status: 'GOLD' }, { expectedVersion: 2, commandId: upgrade });
  await send('UpdateEmail', { email: `${userId}@late.example` }, { expectedVersion: 1, note: 'stale expectedVersion: conflict' });
  await send('UpgradeStatus', { status: 'GOLD' }, { expectedVersion: 2, commandId: upgrade, note: 'the same commandId again: the first reply again' });
  await send('CreateUser', { email: `${userId}@example.com` }, { note: 'the user exists: rejected' });

  const view = await until('view of the user', () => {
    const v = views.get(`${topic('user-view')}/${userId}`);
    return v && v.version >= 3 ? v : undefined;
  });
  console.log(`view of ${userId} in ${topic('user-view')} (version ${view.version}):\n${JSON.stringify(view.value, null, 2)}\n`);
  // the statistics lag a little behind the view (a second stage); give them a moment
  await new Promise((r) => setTimeout(r, 1500));
  const byStatus = [...views].filter(([k, v]) => k.startsWith(`${topic('users-by-status')}/`) && v.value !== null).map(([, v]) => v.value);
  console.log(`users per status in ${topic('users-by-status')}:\n${byStatus.map((v) => `  ${JSON.stringify(v)}`).join('\n')}`);
} finally {
  await consumer.disconnect();
  await producer.disconnect();
}
