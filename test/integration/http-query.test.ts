// The query API of a running users app on the real broker: a user's aggregate state and view, its history and
// state as of a time, a partition another instance runs (421, reads during the rebalance never fail), 404s and the
// bearer token. Commands go through the replies topic as any client's would.
import test from 'ava';
import { App } from '../../src/app/app.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { untilRunning } from '../helpers/app-ready.ts';
import { memoryLogger } from '../helpers/log.ts';
import { waitFor } from '../helpers/processes.ts';
import { command, type Command } from '../helpers/user-model.ts';
import { CommandClient, usersApp, type UsersApp } from '../helpers/users-app.ts';

const TOKEN = 'query-test-token';
const PARTITIONS = 12;

let env: UsersApp;
let a: App;
let client: CommandClient;

test.before(async () => {
  env = await usersApp();
  env.loaded.topology.http.token = TOKEN;
  env.loaded.topology.http.host = '127.0.0.1';
  a = new App(env.loaded, { log: memoryLogger(), stateDir: env.stateDir('a'), httpPort: 0 });
  await a.start();
  // the 404 answers below are for keys of any partition: all of them must be running, not still restoring (503)
  await untilRunning(a);
  client = await CommandClient.start(env.topic('commands'), env.topic('replies'));
});

test.after.always(async () => {
  await client?.close();
  await a?.stop();
  await env?.cleanup();
});

interface Answer {
  status: number;
  body: Record<string, any>;
}

async function get(app: App, path: string, token: string | null = TOKEN): Promise<Answer> {
  const r = await fetch(`http://127.0.0.1:${app.httpPort}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}

async function run(...commands: Command[]): Promise<void> {
  for (const c of commands) {
    await client.send([c]);
    await client.waitFor([c]);
  }
}

/** Polls until the answer has the wanted status (a projection commits after the aggregate). */
async function eventually(app: App, path: string, status = 200): Promise<Answer> {
  let last: Answer | undefined;
  await waitFor(async () => (last = await get(app, path)).status === status, 60_000, `${path} to answer ${status}`, 200);
  return last!;
}

const T1 = '2026-11-01T10:00:00.000Z';
const T2 = '2026-11-02T10:00:00.000Z';
const T3 = '2026-11-03T10:00:00.000Z';

test.serial('a user\'s aggregate state, its view and its group are served from committed state', async (t) => {
  await run(
    command('CreateUser', 'ann', { email: 'ann@x.example', fullName: 'Ann' }, { timestamp: T1, userId: 'admin-1' }),
    command('UpdateEmail', 'ann', { email: 'ann@y.example' }, { timestamp: T2, userId: 'admin-2', expectedVersion: 1 }),
    command('UpgradeStatus', 'ann', { status: 'GOLD' }, { timestamp: T3, userId: 'admin-3' }),
  );
  const partition = partitionForKey('ann', PARTITIONS);
  t.deepEqual(await get(a, '/aggregates/User/ann'), {
    status: 200,
    body: { aggregateType: 'User', aggregateId: 'ann', partition, version: 3, state: { exists: true, email: 'ann@y.example', fullName: 'Ann', status: 'GOLD' } },
  });
  // the same through the generic store route: the aggregate's `state` store holds { version, state }
  t.like((await get(a, '/stores/users/state/ann')).body, { key: 'ann', partition, value: { version: 3 } });
  // a projection's `view` store holds { view, version }
  const view = await waitForView('ann', (v) => v.version === 3);
  t.like(view, { key: 'ann', partition, value: { version: 3, view: { id: 'ann', email: 'ann@y.example', status: 'GOLD', emailChanges: 1, statusHistory: ['GOLD'] } } });
  const gold = await eventually(a, '/stores/users-by-status-group/groups/GOLD');
  t.like(gold.body, { key: 'GOLD', value: { members: 1, view: { count: 1 } } });
  const list = await get(a, '/stores/user-view/view?prefix=ann');
  t.deepEqual(list.body.partitions, [...Array(PARTITIONS).keys()]);
  t.deepEqual(list.body.entries.map((e: { key: string }) => e.key), ['ann']);
});

async function waitForView(id: string, ok: (v: Record<string, unknown>) => boolean): Promise<Record<string, any>> {
  let last: Answer | undefined;
  await waitFor(async () => (last = await get(a, `/stores/user-view/view/${id}`)).status === 200 && ok(last.body.value), 60_000, `view of ${id}`, 200);
  return last!.body;
}

test.serial('the history is the audit trail, and ?at= rebuilds the state of each moment', async (t) => {
  const h = await get(a, '/aggregates/User/ann/history');
  t.is(h.status, 200);
  t.deepEqual(
    h.body.events.map((e: Record<string, any>) => [e.aggregateVersion, e.eventType, e.timestamp, e.userId]),
    [
      [1, 'UserCreated', T1, 'admin-1'],
      [2, 'EmailChanged', T2, 'admin-2'],
      [3, 'StatusUpgraded', T3, 'admin-3'],
    ],
  );
  t.deepEqual(h.body.events[1].data, { oldEmail: 'ann@x.example', newEmail: 'ann@y.example' });
  t.truthy(h.body.events[0].causationId);
  const at = async (time: string) => (await get(a, `/aggregates/User/ann?at=${encodeURIComponent(time)}`)).body;
  t.like(await at('2026-11-01T12:00:00Z'), { version: 1, state: { email: 'ann@x.example', status: 'ACTIVE' } });
  t.like(await at(T2), { version: 2, state: { email: 'ann@y.example', status: 'ACTIVE' } });
  t.like(await at('2026-11-05T00:00:00Z'), { version: 3, state: { email: 'ann@y.example', status: 'GOLD' } });
  t.is((await get(a, '/aggregates/User/ann?at=2026-10-01T00:00:00Z')).status, 404);
});

test.serial('unknown users, processors, stores and types are 404 answers; the token guards all but the probes', async (t) => {
  t.is((await get(a, '/aggregates/User/nobody')).status, 404);
  t.is((await get(a, '/stores/user-view/view/nobody')).status, 404);
  const p = await get(a, '/stores/nope/view/ann');
  t.is(p.status, 404);
  t.true(p.body.processors.some((x: { name: string }) => x.name === 'users-by-status-group'));
  t.deepEqual((await get(a, '/stores/users/nope/ann')).body.stores, ['state', 'commands', 'command-expiry', 'history']);
  t.is((await get(a, '/aggregates/Order/o1')).status, 404);
  t.is((await get(a, '/aggregates/User/ann', null)).status, 401);
  t.is((await get(a, '/aggregates/User/ann', 'wrong')).status, 401);
  t.is((await get(a, '/healthz', null)).status, 200);
});

test.serial('with a second instance, a key of a partition it does not run gets 421 there and its hosted partitions; reads during the rebalance never fail', async (t) => {
  // reads against the first instance while the second joins and tasks move (and close) under them
  let reading = true;
  const seen = new Map<number, number>();
  const reader = (async () => {
    while (reading) {
      // ?route=client: the 421 a client that routes itself gets (routed answers: query-routing.test.ts)
      const perPartition = [...Array(PARTITIONS).keys()].map((p) => `/stores/users/state?partition=${p}&route=client`);
      for (const path of ['/aggregates/User/ann?route=client', '/stores/user-view/view?route=client', '/aggregates/User/ann/history?route=client', ...perPartition]) {
        const r = await get(a, path);
        seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
      }
    }
  })();
  const b = new App(env.loaded, { log: memoryLogger(), stateDir: env.stateDir('b'), httpPort: 0 });
  t.teardown(async () => {
    await waitFor(() => b.ready, 60_000, 'b ready').catch(() => undefined);
    await b.stop();
  });
  try {
    await b.start();
    await waitFor(() => a.ready && b.ready && Object.keys(tasksOf(b)).length > 0 && Object.keys(tasksOf(a)).length > 0, 90_000, 'both instances running users tasks');
  } finally {
    reading = false;
    await reader;
  }
  t.log(`answers during the rebalance by status: ${JSON.stringify([...seen])}`);
  t.deepEqual([...seen.keys()].filter((s) => ![200, 421, 503].includes(s)), [], `answers during the rebalance: ${JSON.stringify([...seen])}`);
  // partitions moved to b while they were being read: a answered for them, then sent the reader on
  t.true(seen.has(421));

  const onB = Object.keys(tasksOf(b)).map(Number).sort((x, y) => x - y);
  const notOnB = [...Array(PARTITIONS).keys()].find((p) => !onB.includes(p))!;
  const id = Array.from({ length: 1000 }, (_, i) => `elsewhere-${i}`).find((k) => partitionForKey(k, PARTITIONS) === notOnB)!;
  await run(command('CreateUser', id, { email: `${id}@x.example` }));
  const there = await get(b, `/aggregates/User/${id}?route=client`);
  t.is(there.status, 421);
  t.like(there.body, { partition: notOnB, hosted: onB });
  // b names the instance the group gave the partition to, and the URL it advertises: a client follows it there
  t.like(there.body, { hostedBy: { url: a.url } });
  t.is(a.url, `http://127.0.0.1:${a.httpPort}`);
  const followed = await fetch(`${there.body.hostedBy.url as string}/aggregates/User/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(followed.status, 200);
  t.like((await get(a, `/aggregates/User/${id}`)).body, { aggregateId: id, version: 1 });
  // routed (the default), b answers with a's value, and says a served it
  const routed = await fetch(`http://127.0.0.1:${b.httpPort}/aggregates/User/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(routed.status, 200);
  t.is(routed.headers.get('x-foldstream-served-by'), a.instanceId ?? null);
  t.like(await routed.json(), { aggregateId: id, version: 1 });
  // a listing on b with client routing searches b's partitions only
  const list = await get(b, '/stores/users/state?route=client');
  t.deepEqual(list.body.partitions, onB);
  t.false(list.body.entries.some((e: { key: string }) => e.key === id));
});

const tasksOf = (app: App): Record<string, unknown> => (app.readiness().detail.processors as Record<string, { tasks: Record<string, unknown> }>).users!.tasks;
