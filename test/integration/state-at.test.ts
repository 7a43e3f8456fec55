// `foldstream state-at` on the real broker: a user is created, changes email and is upgraded at known times; the
// command rebuilds the user's state as of any time from the events topic alone, through the decider's own evolve,
// and as of now it equals what the aggregate keeps in its store.
import test from 'ava';
import { join } from 'node:path';
import { App } from '../../src/app/app.ts';
import { changelogTopic } from '../../src/topology/names.ts';
import { runCli } from '../helpers/cli.ts';
import { changelogState } from '../helpers/counting-app.ts';
import { memoryLogger } from '../helpers/log.ts';
import { command } from '../helpers/user-model.ts';
import { CommandClient, usersApp, type UsersApp } from '../helpers/users-app.ts';

let env: UsersApp;

test.before(async () => {
  env = await usersApp();
  const app = new App(env.loaded, { log: memoryLogger(), stateDir: env.stateDir('a'), httpPort: 0 });
  await app.start();
  const client = await CommandClient.start(env.topic('commands'), env.topic('replies'));
  try {
    const commands = [
      command('CreateUser', 'ann', { email: 'ann@x.example', fullName: 'Ann' }, { timestamp: '2026-01-01T00:00:00.000Z' }),
      command('UpdateEmail', 'ann', { email: 'ann@y.example' }, { timestamp: '2026-02-01T00:00:00.000Z' }),
      command('UpgradeStatus', 'ann', { status: 'GOLD' }, { timestamp: '2026-03-01T00:00:00.000Z' }),
      command('CreateUser', 'bob', { email: 'bob@x.example' }, { timestamp: '2026-01-05T00:00:00.000Z' }),
    ];
    await client.send(commands);
    await client.waitFor(commands);
  } finally {
    await client.close();
    await app.stop();
  }
});

test.after.always(async () => {
  await env?.cleanup();
});

const stateAt = async (...args: string[]) => {
  const r = await runCli(['state-at', join(env.dir, 'topology.yaml'), ...args]);
  return { code: r.code, out: r.code === 2 ? r.stderr : (JSON.parse(r.stdout) as { version: number; state: Record<string, unknown> | null; laterEvents: number; events?: { eventType: string }[] }) };
};

test('the state as of each time applies exactly the events up to it', async (t) => {
  const jan = await stateAt('User', 'ann', '--at', '2026-01-15T00:00:00Z');
  t.is(jan.code, 0);
  t.like(jan.out, { version: 1, laterEvents: 2, state: { email: 'ann@x.example', status: 'ACTIVE' } });
  const feb = await stateAt('users', 'ann', '--at', '2026-02-01T00:00:00Z', '--events');
  t.like(feb.out, { version: 2, laterEvents: 1, state: { email: 'ann@y.example', status: 'ACTIVE' } });
  t.deepEqual((feb.out as { events: { eventType: string }[] }).events.map((e) => e.eventType), ['UserCreated', 'EmailChanged']);
  // before the user existed: no state, exit 1
  const before = await stateAt('User', 'ann', '--at', '2025-12-31T23:59:59Z');
  t.is(before.code, 1);
  t.like(before.out, { version: 0, state: null, laterEvents: 3 });
});

test('as of now, the rebuilt state equals the one the aggregate keeps in its store', async (t) => {
  const stored = (await changelogState(changelogTopic(env.app, 'users', 'state'))) as Map<string, { version: number; state: unknown }>;
  for (const id of ['ann', 'bob']) {
    const now = await stateAt('User', id);
    t.is(now.code, 0);
    t.like(now.out, { version: stored.get(id)!.version, laterEvents: 0 });
    t.deepEqual((now.out as { state: unknown }).state, stored.get(id)!.state);
  }
});

test('progress of the read goes to stderr (a line at the end when stderr is no terminal), and --quiet has none', async (t) => {
  const shown = await runCli(['state-at', join(env.dir, 'topology.yaml'), 'User', 'ann']);
  t.is(shown.code, 0, shown.stderr);
  t.regex(shown.stderr, /^read .*-events: (\d+)\/\1 offsets \(100 %\)$/m);
  const quiet = await runCli(['state-at', join(env.dir, 'topology.yaml'), 'User', 'ann', '--quiet']);
  t.is(quiet.code, 0);
  t.is(quiet.stderr, '');
});

test('an unknown aggregate names the ones there are; a bad time is refused before Kafka is asked', async (t) => {
  const r = await runCli(['state-at', join(env.dir, 'topology.yaml'), 'Usr', 'ann']);
  t.is(r.code, 1);
  t.regex(r.stderr, /no aggregate "Usr".*users \(User\)/);
  const bad = await runCli(['state-at', join(env.dir, 'topology.yaml'), 'User', 'ann', '--at', 'yesterday']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /--at "yesterday": expected ISO-8601/);
});
