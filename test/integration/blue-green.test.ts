// A blue/green rebuild of a projection on the real broker (issue 17, Deliver 5; docs/projections.md#blue-green-rebuild).
// The users example runs with its user-view projection. A new version, user-view-v2 (`replaces: user-view`, its own
// view topic, a module that takes 40 ms per event), is deployed beside it: while it builds from the events topic, reads
// of user-view are answered by the old version; once it has caught up, by the new one — and a client reading every key
// all along gets an answer with a view every time (no 5xx, no 404, no empty view). The new view topic equals a fold of
// the events. Then the old version leaves the topology and `foldstream retire` deletes its group, changelog, view topic
// and local state: refused while an instance still runs it, done once none does, and queries go on.
import test from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { App } from '../../src/app/app.ts';
import type { EventEnvelope } from '../../src/serde/envelope.ts';
import { loadTopology, type LoadedTopology } from '../../src/topology/load.ts';
import { changelogTopic, groupId, internalTopics } from '../../src/topology/names.ts';
import { FIXTURES, runCli } from '../helpers/cli.ts';
import { deleteTopics, readAll, withAdmin } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { command } from '../helpers/user-model.ts';
import { CommandClient, latestByKey, usersApp, waitForConsumed, type UsersApp, type UsersTopologyDoc } from '../helpers/users-app.ts';

let env: UsersApp;
const extra: LoadedTopology[] = [];

test.before(async () => {
  env = await usersApp();
});

test.after.always(async () => {
  for (const l of extra) await deleteTopics([...Object.values(l.topology.topics).map((x) => x.name), ...internalTopics(l.topology).map((x) => x.name)]).catch(() => undefined);
  await env?.cleanup();
});

const USERS = 120;
const keys = Array.from({ length: USERS }, (_, i) => `u${i}`);

/** the topology with user-view-v2 beside user-view (both), or instead of it (final) */
function topology(which: 'both' | 'final'): { file: string; loaded: LoadedTopology } {
  const doc = parse(readFileSync(join(env.dir, 'topology.yaml'), 'utf8')) as UsersTopologyDoc;
  doc.topics['user-view-v2'] = { name: `${env.app}-user-view-v2`, config: { 'cleanup.policy': 'compact' } };
  (doc.topics['user-view-v2'] as Record<string, unknown>).partitions = 12;
  doc.processors.push({ name: 'user-view-v2', type: 'projection', input: 'events', output: 'user-view-v2', module: join(FIXTURES, 'modules', 'user-card.ts'), replaces: 'user-view' });
  if (which === 'final') {
    doc.processors = doc.processors.filter((p) => p.name !== 'user-view');
    delete doc.topics['user-view'];
  }
  const file = join(env.dir, `topology-${which}.yaml`);
  writeFileSync(file, stringify(doc));
  const loaded = loadTopology(file, { env: { ...process.env, HTTP_PORT: '0' } });
  extra.push(loaded);
  return { file, loaded };
}

interface Answer {
  status: number;
  by: string | null;
  /** the view in the store entry */
  value: unknown;
}
async function get(app: App, key: string): Promise<Answer> {
  const res = await fetch(`${app.url}/stores/user-view/view/${key}`);
  const body = (await res.json()) as { value?: { view?: unknown } };
  return { status: res.status, by: res.headers.get('x-foldstream-processor'), value: body.value?.view };
}

/** the card of every user as a fold of the events (the rules of test/fixtures/modules/user-card.ts) */
function cards(events: EventEnvelope[]): Record<string, unknown> {
  const out: Record<string, { email: string; status: string; changes: number }> = {};
  for (const e of [...events].sort((a, b) => a.aggregateVersion - b.aggregateVersion)) {
    const c = out[e.aggregateId];
    if (e.eventType === 'UserCreated') out[e.aggregateId] = { email: String(e.data.email), status: String(e.data.status), changes: 0 };
    else if (c && e.eventType === 'EmailChanged') out[e.aggregateId] = { ...c, email: String(e.data.newEmail), changes: c.changes + 1 };
    else if (c && e.eventType === 'StatusUpgraded') out[e.aggregateId] = { ...c, status: String(e.data.status), changes: c.changes + 1 };
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

test.serial('a new version of a projection is built beside the old one, takes over the queries with no gap, and the old one is retired', async (t) => {
  const stateDir = env.stateDir('a');
  // the old version alone, with some history
  let app = new App(env.loaded, { log: memoryLogger(), stateDir, httpPort: 0 });
  await app.start();
  const client = await CommandClient.start(env.topic('commands'), env.topic('replies'));
  try {
    const commands = [
      ...keys.map((id) => command('CreateUser', id, { email: `${id}@x.example`, fullName: id })),
      ...keys.slice(0, 60).map((id) => command('UpgradeStatus', id, { status: 'GOLD' })),
      ...keys.slice(0, 30).map((id) => command('UpdateEmail', id, { email: `new-${id}@x.example` })),
    ];
    await client.send(commands);
    await client.waitFor(commands);
    await waitForConsumed(groupId(env.app, 'user-view'), env.topic('events'));
  } finally {
    await client.close();
    await app.stop();
  }

  // both versions: the old one serves while the new one builds
  const both = topology('both');
  app = new App(both.loaded, { log: memoryLogger(), stateDir, httpPort: 0 });
  await app.start();
  const answers: (Answer & { key: string })[] = [];
  try {
    // the old version's tasks come up (503 while they restore): from when each key has been answered once, every read counts
    const deadline = Date.now() + 60_000;
    const up = new Set<string>();
    while (up.size < USERS && Date.now() < deadline) for (const key of keys) if (!up.has(key) && (await get(app, key)).status === 200) up.add(key);
    t.is(up.size, USERS, 'the old version answers every key');

    const byV2 = new Set<string>();
    const until = Date.now() + 120_000;
    while (byV2.size < USERS && Date.now() < until) {
      for (const key of keys) {
        const a = await get(app, key);
        answers.push({ key, ...a });
        if (a.by === 'user-view-v2') byV2.add(key);
      }
    }
    t.is(byV2.size, USERS, 'the new version answers every key in the end');

    // refused while an instance runs the old version
    const final = topology('final');
    const busy = await runCli(['retire', final.file, 'user-view', '--view-topic', env.topic('user-view'), '--yes', '--state-dir', stateDir]);
    t.is(busy.code, 1, busy.stdout + busy.stderr);
    t.regex(busy.stderr, /an instance still runs it/);
  } finally {
    await app.stop();
  }
  // every read was answered with a view, first by the old version, then for good by the new one
  const bad = answers.filter((a) => a.status !== 200 || a.value === null || a.value === undefined || typeof a.value !== 'object');
  t.deepEqual(bad.slice(0, 3), [], `${bad.length} reads without a view`);
  t.true(answers.some((a) => a.by === 'user-view'), 'the old version answered while the new one built');
  const switched = new Set<string>();
  const backwards = answers.filter((a) => {
    if (a.by === 'user-view-v2') switched.add(a.key);
    return a.by === 'user-view' && switched.has(a.key);
  });
  t.deepEqual(backwards.slice(0, 3), [], 'no key answered by the old version after the new one');
  t.true(answers.every((a) => a.by === 'user-view' || a.by === 'user-view-v2'));

  // the new view topic is the fold of the events
  const events = (await readAll([env.topic('events')])).map((r) => JSON.parse(r.value!.toString()) as EventEnvelope);
  t.deepEqual(latestByKey(await readAll([`${env.app}-user-view-v2`])), cards(events));

  // the old version leaves the topology; retire refuses the topology that still has it, then deletes what it left
  const stillThere = await runCli(['retire', both.file, 'user-view', '--yes', '--state-dir', stateDir]);
  t.is(stillThere.code, 1);
  t.regex(stillThere.stderr, /"user-view" is still a processor/);
  const final = topology('final');
  app = new App(final.loaded, { log: memoryLogger(), stateDir, httpPort: 0 });
  await app.start();
  try {
    t.true(existsSync(join(stateDir, env.app, 'user-view')));
    const retired = await runCli(['retire', final.file, 'user-view', '--view-topic', env.topic('user-view'), '--yes', '--state-dir', stateDir]);
    t.is(retired.code, 0, retired.stdout + retired.stderr);
    const topics = await withAdmin((a) => a.listTopics());
    t.false(topics.includes(env.topic('user-view')));
    t.false(topics.includes(changelogTopic(env.app, 'user-view', 'view')));
    t.true(topics.includes(`${env.app}-user-view-v2`));
    const groups = await withAdmin(async (a) => (await a.listGroups()).groups.map((g) => g.groupId));
    t.false(groups.includes(groupId(env.app, 'user-view')));
    t.false(existsSync(join(stateDir, env.app, 'user-view')));
    // queries of the old name go on, answered by the new version
    const deadline = Date.now() + 60_000;
    let a = await get(app, 'u7');
    while (a.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      a = await get(app, 'u7');
    }
    t.like(a, { status: 200, by: 'user-view-v2', value: cards(events).u7 as object });
  } finally {
    await app.stop();
  }
});
