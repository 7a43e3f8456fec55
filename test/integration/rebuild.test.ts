// `foldstream rebuild` on the real broker (issue 17, Deliver 2): the users example handles commands (accepted,
// rejected, accepted with no event), is stopped, and its aggregate's evolve changes (test/fixtures/modules/user-counted.ts
// adds a `changes` field). Rebuild is refused while the app runs; a dry run writes nothing; the rebuild writes no event,
// no reply and no offset, the rebuilt `state` changelog equals a fold of the events through the new evolve, and the
// `commands` memory is unchanged. With the commands changelog lost, a second rebuild remembers every command that has
// events again from them. The app started again with the new evolve serves the rebuilt state, answers resent
// commandIds with their first replies (accepted and rejected alike) without deciding them again, handles nothing it had
// handled (exactly the replies of the commands sent after the rebuild appear) and decides a new command on the new state.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { App } from '../../src/app/app.ts';
import { createKafka } from '../../src/kafka/client.ts';
import { recreateTopics } from '../../src/kafka/reset-admin.ts';
import { planTopics } from '../../src/topology/topic-plan.ts';
import type { EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { changelogTopic, groupId } from '../../src/topology/names.ts';
import { initialState } from '../../examples/users/user.ts';
import { evolve as countedEvolve, type CountedUser } from '../fixtures/modules/user-counted.ts';
import { FIXTURES, runCli } from '../helpers/cli.ts';
import { changelogState, sortedObject } from '../helpers/counting-app.ts';
import { endOffsets, readAll, withAdmin } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { command, type Command } from '../helpers/user-model.ts';
import { CommandClient, usersApp, waitForConsumed, type UsersApp, type UsersTopologyDoc } from '../helpers/users-app.ts';

let env: UsersApp;

test.before(async () => {
  env = await usersApp();
});

test.after.always(async () => {
  await env?.cleanup();
});

/** the same topology with the users aggregate's new evolve */
function counted(): string {
  const doc = parse(readFileSync(join(env.dir, 'topology.yaml'), 'utf8')) as UsersTopologyDoc;
  doc.processors.find((p) => p.name === 'users')!.module = join(FIXTURES, 'modules', 'user-counted.ts');
  const file = join(env.dir, 'topology-counted.yaml');
  writeFileSync(file, stringify(doc));
  return file;
}

/** the users' states as a fold of the events topic through the new evolve */
function foldEvents(events: EventEnvelope[]): Record<string, { version: number; state: CountedUser }> {
  const out = new Map<string, { version: number; state: CountedUser }>();
  for (const e of [...events].sort((a, b) => a.aggregateVersion - b.aggregateVersion)) {
    const before = out.get(e.aggregateId) ?? { version: 0, state: initialState() as CountedUser };
    out.set(e.aggregateId, { version: e.aggregateVersion, state: countedEvolve(before.state, e) });
  }
  return sortedObject(out);
}

const groupOffsets = (group: string, topic: string) =>
  withAdmin(async (a) => Object.fromEntries(((await a.fetchOffsets({ groupId: group, topics: [topic] }))[0]?.partitions ?? []).map((p) => [p.partition, p.offset])));

/** an aggregate's state from the app's query API, once its task runs (503 while it restores) */
async function served(app: App, id: string): Promise<{ version: number; state: CountedUser }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`${app.url}/aggregates/User/${id}`);
    if (res.status === 200) return (await res.json()) as { version: number; state: CountedUser };
    if (Date.now() > deadline) throw new Error(`GET /aggregates/User/${id}: ${res.status} ${await res.text()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test.serial('an aggregate rebuilt with a new evolve: the fold of its events, its commandIds remembered, no command run twice or skipped', async (t) => {
  const stateDir = env.stateDir('a');
  const file = join(env.dir, 'topology.yaml');
  const fileCounted = counted();
  const events = env.topic('events');
  const replies = env.topic('replies');
  const group = groupId(env.app, 'users');

  const creates = Array.from({ length: 12 }, (_, i) => command('CreateUser', `u${i}`, { email: `u${i}@x.example`, fullName: `U ${i}` }));
  const later = [
    ...Array.from({ length: 6 }, (_, i) => command('UpgradeStatus', `u${i}`, { status: 'GOLD' })),
    ...Array.from({ length: 3 }, (_, i) => command('UpdateEmail', `u${i}`, { email: `new${i}@x.example` })),
    command('UpgradeStatus', 'u0', { status: 'SILVER' }), // rejected: not an upgrade
    command('UpdateEmail', 'u9', { email: 'u9@x.example' }), // accepted, no event: the same address
    command('CreateUser', 'u1', { email: 'again@x.example' }), // rejected: exists
  ];
  const first = new Map<string, Reply>();
  let app = new App(env.loaded, { log: memoryLogger(), stateDir, httpPort: 0 });
  await app.start();
  const client = await CommandClient.start(env.topic('commands'), replies);
  try {
    await client.send(creates);
    await client.waitFor(creates);
    await client.send(later);
    const got = await client.waitFor([...creates, ...later]);
    [...creates, ...later].forEach((c, i) => first.set(c.commandId, got[i]![0]!));
    t.like(first.get(later.at(-3)!.commandId), { status: 'rejected', code: 'NOT_AN_UPGRADE' });
    t.like(first.get(later.at(-2)!.commandId), { status: 'accepted', eventIds: [] });
    await waitForConsumed(group, env.topic('commands'));

    // refused while the app runs: the group has members
    const running = await runCli(['rebuild', fileCounted, 'users', '--yes', '--quiet']);
    t.is(running.code, 1, running.stdout + running.stderr);
    t.regex(running.stderr, /refusing to rebuild: stop every instance/);
  } finally {
    await app.stop();
  }

  const eventsBefore = await readAll([events]);
  const repliesBefore = await endOffsets(replies, 'read_uncommitted');
  const eventsEnd = await endOffsets(events, 'read_uncommitted');
  const offsetsBefore = await groupOffsets(group, env.topic('commands'));
  const commandsBefore = sortedObject(await changelogState(changelogTopic(env.app, 'users', 'commands')));
  const stateTopic = changelogTopic(env.app, 'users', 'state');
  const stateBefore = sortedObject(await changelogState(stateTopic));
  t.false(JSON.stringify(stateBefore).includes('changes'), 'the old evolve has no changes field');
  t.is(Object.keys(commandsBefore).length, creates.length + later.length);

  // a dry run folds and writes nothing
  const dry = await runCli(['rebuild', fileCounted, 'users', '--quiet', '--metrics-port', '0']);
  t.is(dry.code, 0, dry.stdout + dry.stderr);
  t.regex(dry.stdout, /progress metrics at http:\/\/localhost:\d+\/metrics/);
  t.is(dry.stderr, '', '--quiet: no progress display');
  t.regex(dry.stdout, /folded 21 events of 12 aggregates: 12 states change/);
  t.regex(dry.stdout, /nothing written/);
  t.deepEqual(sortedObject(await changelogState(stateTopic)), stateBefore);

  // the rebuild, with progress lines (stderr is no terminal here)
  const done = await runCli(['rebuild', fileCounted, 'users', '--yes']);
  t.is(done.code, 0, done.stdout + done.stderr);
  t.regex(done.stdout, /0 processed commandIds remembered again/);
  t.regex(done.stderr, /read .*-events: (\d+)\/\1 offsets \(100 %\)/);
  t.regex(done.stderr, /write changelogs: \d+\/\d+ records/);

  // nothing but the changelogs was written: no event, no reply, the group's offsets as they were
  t.deepEqual(await endOffsets(events, 'read_uncommitted'), eventsEnd);
  t.deepEqual(await endOffsets(replies, 'read_uncommitted'), repliesBefore);
  t.deepEqual(await groupOffsets(group, env.topic('commands')), offsetsBefore);
  const folded = foldEvents(eventsBefore.map((r) => JSON.parse(r.value!.toString()) as EventEnvelope));
  t.deepEqual(sortedObject(await changelogState(stateTopic)), folded);
  t.is((folded.u0!.state as { changes: number }).changes, 3);
  t.deepEqual(sortedObject(await changelogState(changelogTopic(env.app, 'users', 'commands'))), commandsBefore);

  // the app with the new evolve, on the same state directory (its stores continue from their checkpoints)
  const loaded = loadTopology(fileCounted, { env: { ...process.env, HTTP_PORT: '0' } });
  app = new App(loaded, { log: memoryLogger(), stateDir, httpPort: 0 });
  await app.start();
  const resent: Command[] = [creates[3]!, later.at(-3)!, later.at(-1)!, later[0]!];
  const fresh = command('UpgradeStatus', 'u0', { status: 'VIP' });
  try {
    const u2 = await served(app, 'u2');
    t.deepEqual({ version: u2.version, state: u2.state }, folded.u2);

    await client.send([...resent, fresh]);
    const answers = await client.waitFor([...creates, ...later, fresh]);
    const byId = new Map([...creates, ...later, fresh].map((c, i) => [c.commandId, answers[i]!]));
    // each resent commandId: its first reply again (a forgotten id would be decided again: USER_EXISTS, NOT_AN_UPGRADE)
    for (const c of resent) t.deepEqual(byId.get(c.commandId)!.at(-1), first.get(c.commandId), c.commandType);
    t.like(byId.get(fresh.commandId)![0], { status: 'accepted', aggregateVersion: 4 });
    await waitForConsumed(group, env.topic('commands'));
    t.like(await served(app, 'u0'), { version: 4, state: { status: 'VIP', changes: 4 } });
  } finally {
    await client.close();
    await app.stop();
  }
  // exactly the new command's event, and a reply for each command sent since: nothing handled again or skipped
  t.is((await readAll([events])).length, eventsBefore.length + 1);
  const repliesAfter = (await readAll([replies])).length;
  t.is(repliesAfter, creates.length + later.length + resent.length + 1);

  // the commands changelog lost (re-created empty): the rebuild remembers every command that has events again from
  // them, so a resent command that had events still gets its first reply on a machine with no local state
  const kafka = createKafka(loaded.topology, { clientIdSuffix: '-test' });
  const commandsTopic = changelogTopic(env.app, 'users', 'commands');
  await recreateTopics(kafka, planTopics(loaded.topology).filter((x) => x.name === commandsTopic));
  const again = await runCli(['rebuild', fileCounted, 'users', '--yes', '--quiet']);
  t.is(again.code, 0, again.stdout + again.stderr);
  t.regex(again.stdout, /22 processed commandIds remembered again from their events/); // 21 commands with events and the fresh one
  app = new App(loaded, { log: memoryLogger(), stateDir: env.stateDir('b'), httpPort: 0 });
  await app.start();
  const client2 = await CommandClient.start(env.topic('commands'), replies);
  try {
    const retried = [creates[5]!, later[1]!];
    await client2.send(retried);
    await client2.waitFor([...creates, ...later, fresh, ...retried]);
    for (const c of retried) t.deepEqual(client2.replies.get(JSON.stringify([c.aggregateId, c.commandId]))!.at(-1), first.get(c.commandId), `${c.commandType} ${c.aggregateId}`);
  } finally {
    await client2.close();
    await app.stop();
  }
  t.is((await readAll([events])).length, eventsBefore.length + 1, 'no event for the retried commands');
});

test.serial('an aggregate that never ran on the cluster (no changelogs) is refused, and nothing is created', async (t) => {
  const doc = parse(readFileSync(join(env.dir, 'topology.yaml'), 'utf8')) as UsersTopologyDoc;
  doc.app = `${env.app}-other`;
  const file = join(env.dir, 'topology-other.yaml');
  writeFileSync(file, stringify(doc));
  const r = await runCli(['rebuild', file, 'users', '--yes', '--quiet']);
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stderr, /REBUILD_UNSAFE: topics of aggregate users do not exist: .*-other-users-state-changelog/);
  const topics = await withAdmin((a) => a.listTopics());
  t.false(topics.some((x) => x.startsWith(`${env.app}-other-`)));
});
