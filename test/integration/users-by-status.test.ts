// users-by-status on the real broker: thousands of random commands over 12 partitions, through the aggregate, the
// per-user stage and the group stage (each its own consumer group and transactions), with instances joining and
// leaving mid-run. Everything read back with read_committed must equal a model computed from the commands alone.
import test from 'ava';
import { App } from '../../src/app/app.ts';
import type { EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { changelogState } from '../helpers/counting-app.ts';
import { readAll } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { waitFor } from '../helpers/processes.ts';
import { randomCommands, UserModel } from '../helpers/user-model.ts';
import { CommandClient, latestByKey, usersApp, waitForConsumed } from '../helpers/users-app.ts';

/**
 * Stops an instance once none of its tasks is initialising: a task still initialising when its app stops can use the
 * app's closed admin client, which reconnects and keeps the test process alive (reported to the runtime's owners).
 */
async function stopWhenReady(app: App): Promise<void> {
  await waitFor(() => app.ready, 60_000, 'every task running').catch(() => undefined);
  await app.stop();
}

test('users-by-status counts equal a model after 3000 random commands across 12 partitions, exactly once across both stages', async (t) => {
  const env = await usersApp({ commitIntervalMs: 50, maxBufferedRecords: 100 });
  const apps: App[] = [];
  const start = async (name: string) => {
    const app = new App(env.loaded, { log: memoryLogger(), stateDir: env.stateDir(name), httpPort: 0 });
    await app.start();
    apps.push(app);
    return app;
  };
  let client: CommandClient | undefined;
  try {
    await start('a');
    const b = await start('b');
    client = await CommandClient.start(env.topic('commands'), env.topic('replies'));
    const commands = randomCommands(3000, 400, 2024, 'user');
    const model = new UserModel();
    const expected = commands.map((c) => model.apply(c));

    await client.send(commands.slice(0, 1500));
    // an instance leaves and another joins while commands are in flight: tasks move, stores restore from changelogs
    await stopWhenReady(b);
    apps.splice(apps.indexOf(b), 1);
    await start('c');
    await client.send(commands.slice(1500));
    const replies = await client.waitFor(commands, 240_000);

    // the aggregate: every command's first reply is the model's, a resent command got the same reply again
    const byId = new Map<string, Reply>(replies.map((rs) => [rs[0]!.commandId, rs[0]!]));
    t.deepEqual(
      commands.map((c) => [c.commandId, byId.get(c.commandId)?.status, byId.get(c.commandId)?.aggregateVersion, byId.get(c.commandId)?.eventIds.length]),
      commands.map((c, i) => [c.commandId, expected[i]!.status, expected[i]!.aggregateVersion, expected[i]!.events]),
    );
    for (const rs of replies) for (const r of rs) t.deepEqual(r, rs[0]);

    // the events: per user exactly versions 1..N, in order, once each
    const events = (await readAll([env.topic('events')])).map((r) => JSON.parse(String(r.value)) as EventEnvelope);
    const versions = new Map<string, number[]>();
    for (const e of events) versions.set(e.aggregateId, [...(versions.get(e.aggregateId) ?? []), e.aggregateVersion]);
    t.deepEqual(
      Object.fromEntries([...versions].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, vs]) => [id, vs])),
      Object.fromEntries([...model.users].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, u]) => [id, Array.from({ length: u.version }, (_, i) => i + 1)])),
    );

    // both stages caught up: the per-user stage with the events, the group stage with the repartition topic
    await waitForConsumed(`${env.app}-users-by-status`, env.topic('events'));
    await waitForConsumed(`${env.app}-users-by-status-group`, `${env.app}-users-by-status-repartition`);
    const counts = model.byStatus();
    t.true(Object.keys(counts).length === 4, `every status has users: ${JSON.stringify(counts)}`);
    const view = Object.fromEntries(Object.entries(counts).map(([status, count]) => [status, { key: status, count }]));
    t.deepEqual(latestByKey(await readAll([env.topic('users-by-status')])), view);
    // and the group stage's store, read through its changelog, holds the same
    const groups = await changelogState(`${env.app}-users-by-status-group-groups-changelog`);
    t.deepEqual(
      Object.fromEntries([...groups].filter(([, g]) => (g as { view: unknown }).view !== null).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, g]) => [k, (g as { view: unknown }).view])),
      view,
    );

    // the per-user view agrees too
    await waitForConsumed(`${env.app}-user-view`, env.topic('events'));
    const users = latestByKey(await readAll([env.topic('user-view')])) as Record<string, { status: string; email: string }>;
    t.deepEqual(
      Object.fromEntries(Object.entries(users).map(([id, u]) => [id, [u.status, u.email]])),
      Object.fromEntries([...model.users].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, u]) => [id, [u.status, u.email]])),
    );
  } finally {
    await client?.close();
    for (const app of apps) await stopWhenReady(app);
    await env.cleanup();
  }
});

