// `foldstream reset` on the real broker: the users example processes some commands; reset is refused while the app
// runs and for the aggregate; with the app stopped, resetting the user-view projection and the two-stage
// users-by-status projection deletes their groups, empties their changelogs and repartition topic and deletes their
// local state, and the next run rebuilds both from the events topic — the same stores, the same latest views.
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { App } from '../../src/app/app.ts';
import { changelogTopic, groupId, repartitionTopic } from '../../src/topology/names.ts';
import { runCli } from '../helpers/cli.ts';
import { changelogState } from '../helpers/counting-app.ts';
import { readAll, withAdmin } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { command } from '../helpers/user-model.ts';
import { CommandClient, latestByKey, usersApp, waitForConsumed, type UsersApp } from '../helpers/users-app.ts';

let env: UsersApp;

test.before(async () => {
  env = await usersApp();
});

test.after.always(async () => {
  await env?.cleanup();
});

const file = () => join(env.dir, 'topology.yaml');
const sorted = (m: Map<string, unknown>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const stores = async () => ({
  views: sorted(await changelogState(changelogTopic(env.app, 'user-view', 'view'))),
  groups: sorted(await changelogState(changelogTopic(env.app, 'users-by-status-group', 'groups'))),
});

async function runUntilConsumed(stateDir: string): Promise<void> {
  const app = new App(env.loaded, { log: memoryLogger(), stateDir, httpPort: 0 });
  await app.start();
  try {
    await waitForConsumed(groupId(env.app, 'user-view'), env.topic('events'));
    await waitForConsumed(groupId(env.app, 'users-by-status'), env.topic('events'));
    await waitForConsumed(groupId(env.app, 'users-by-status-group'), repartitionTopic(env.app, 'users-by-status'));
  } finally {
    await app.stop();
  }
}

test.serial('a reset projection is rebuilt from its input: the same stores and the same latest views', async (t) => {
  const stateDir = env.stateDir('a');
  const app = new App(env.loaded, { log: memoryLogger(), stateDir, httpPort: 0 });
  await app.start();
  const client = await CommandClient.start(env.topic('commands'), env.topic('replies'));
  try {
    const commands = [
      ...Array.from({ length: 30 }, (_, i) => command('CreateUser', `u${i}`, { email: `u${i}@x.example`, fullName: `U ${i}` })),
      ...Array.from({ length: 10 }, (_, i) => command('UpgradeStatus', `u${i}`, { status: i % 2 ? 'GOLD' : 'VIP' })),
      ...Array.from({ length: 5 }, (_, i) => command('UpdateEmail', `u${i}`, { email: `new${i}@x.example` })),
    ];
    await client.send(commands);
    await client.waitFor(commands);
    await waitForConsumed(groupId(env.app, 'user-view'), env.topic('events'));
    await waitForConsumed(groupId(env.app, 'users-by-status-group'), repartitionTopic(env.app, 'users-by-status'));

    // refused while the app runs: its groups have members
    const running = await runCli(['reset', file(), 'user-view', '--yes', '--state-dir', stateDir]);
    t.is(running.code, 1, running.stdout + running.stderr);
    t.regex(running.stderr, /consumer group .*-user-view is Stable/);
    t.regex(running.stderr, /stop every instance of app/);
  } finally {
    await client.close();
    await app.stop();
  }
  const before = await stores();
  const viewsBefore = latestByKey(await readAll([env.topic('user-view')]));
  const statsBefore = latestByKey(await readAll([env.topic('users-by-status')]));
  t.is(Object.keys(before.views).length, 30);
  t.true(existsSync(join(stateDir, env.app, 'user-view')));

  // the aggregate is refused: its events would be appended again
  const aggregate = await runCli(['reset', file(), 'users', '--yes', '--state-dir', stateDir]);
  t.is(aggregate.code, 1);
  t.regex(aggregate.stderr, /refusing to reset aggregate "users"/);

  for (const p of ['user-view', 'users-by-status']) {
    const r = await runCli(['reset', file(), p, '--yes', '--state-dir', stateDir]);
    t.is(r.code, 0, r.stdout + r.stderr);
    // its steps, as a line at the end (stderr is no terminal here)
    t.regex(r.stderr, new RegExp(`^reset ${p}: (\\d+)/\\1 steps \\(100 %\\)$`, 'm'));
  }
  // groups gone, changelogs and the repartition topic empty, local state gone
  const groups = await withAdmin((a) => a.describeGroups(['user-view', 'users-by-status', 'users-by-status-group'].map((p) => groupId(env.app, p))));
  t.deepEqual(groups.groups.map((g) => g.state), ['Dead', 'Dead', 'Dead']);
  t.deepEqual((await stores()).views, {});
  t.is((await readAll([changelogTopic(env.app, 'users-by-status-group', 'groups'), repartitionTopic(env.app, 'users-by-status')])).length, 0);
  t.false(existsSync(join(stateDir, env.app, 'user-view')));
  t.false(existsSync(join(stateDir, env.app, 'users-by-status-group')));
  t.true(existsSync(join(stateDir, env.app, 'users')), 'the aggregate keeps its state');

  await runUntilConsumed(stateDir);
  const after = await stores();
  t.deepEqual(after.views, before.views);
  t.deepEqual(after.groups, before.groups);
  t.deepEqual(latestByKey(await readAll([env.topic('user-view')])), viewsBefore);
  t.deepEqual(latestByKey(await readAll([env.topic('users-by-status')])), statsBefore);
  // the views were written again: twice each now
  t.is((await readAll([env.topic('user-view')])).length, 2 * 45);
});
