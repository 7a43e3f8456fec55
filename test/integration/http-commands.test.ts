// The command gateway of a running users app on the real broker: a command written through HTTP and its reply
// waited for, a rejected command's reply, a conflict, a timed-out wait retried with the same commandId (one effect),
// a command sent without waiting, and the 400s that say what is wrong with a request.
import test from 'ava';
import { App } from '../../src/app/app.ts';
import type { Reply } from '../../src/serde/envelope.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { memoryLogger } from '../helpers/log.ts';
import { waitFor } from '../helpers/processes.ts';
import { usersApp, type UsersApp } from '../helpers/users-app.ts';

let env: UsersApp;
let app: App;

test.before(async () => {
  env = await usersApp();
  app = new App(env.loaded, { log: memoryLogger(), stateDir: env.stateDir('a'), httpPort: 0 });
  await app.start();
  await waitFor(() => app.ready, 60_000, 'app ready');
});

test.after.always(async () => {
  await app?.stop();
  await env?.cleanup();
});

interface Answer {
  status: number;
  body: Record<string, any>;
}

async function post(path: string, body: unknown): Promise<Answer> {
  const r = await fetch(`http://127.0.0.1:${app.httpPort}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}

async function get(path: string): Promise<Answer> {
  const r = await fetch(`http://127.0.0.1:${app.httpPort}${path}`);
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}

/** The aggregate's version once its state is in the store (LevelDB is written just after the commit). */
async function versionOf(id: string, version: number): Promise<Answer> {
  let last: Answer | undefined;
  await waitFor(async () => (last = await get(`/aggregates/User/${id}`)).status === 200 && last.body.version === version, 30_000, `${id} at version ${version}`, 100);
  return last!;
}

test.serial('a command through the gateway is answered with its reply, and the user exists', async (t) => {
  const r = await post('/commands/CreateUser?wait=30000', { aggregateId: 'gw-ann', data: { email: 'ann@x.example', fullName: 'Ann' }, userId: 'admin-1' });
  t.is(r.status, 200);
  const reply = r.body as Reply;
  t.like(reply, { status: 'accepted', aggregateId: 'gw-ann', aggregateVersion: 1 });
  t.is(reply.eventIds.length, 1);
  t.truthy(reply.commandId);
  t.like((await versionOf('gw-ann', 1)).body, { state: { email: 'ann@x.example', fullName: 'Ann' } });
  t.like((await get('/aggregates/User/gw-ann/history')).body.events[0], { userId: 'admin-1', causationId: reply.commandId });
});

test.serial('a rejected command and a stale expectedVersion get their replies', async (t) => {
  const again = await post('/commands/CreateUser?wait=30000', { aggregateId: 'gw-ann', data: { email: 'bob@x.example' } });
  t.is(again.status, 200);
  t.like(again.body, { status: 'rejected', code: 'USER_EXISTS', reason: 'user gw-ann already exists', aggregateVersion: 1, eventIds: [] });
  const stale = await post('/commands/UpdateEmail?wait=30000', { aggregateId: 'gw-ann', expectedVersion: 0, data: { email: 'ann@y.example' } });
  t.like(stale.body, { status: 'conflict', code: 'CONCURRENCY_CONFLICT', aggregateVersion: 1 });
});

test.serial('a wait that times out answers 504 with the commandId; the retry with that id gets the reply and the command ran once', async (t) => {
  const first = await post('/commands/UpgradeStatus?wait=1', { aggregateId: 'gw-ann', data: { status: 'GOLD' } });
  t.is(first.status, 504);
  const { commandId, topic, partition } = first.body;
  t.truthy(commandId);
  t.is(topic, env.topic('commands'));
  t.is(partition, partitionForKey('gw-ann', 12));
  const retry = await post('/commands/UpgradeStatus?wait=30000', { aggregateId: 'gw-ann', commandId, data: { status: 'GOLD' } });
  t.is(retry.status, 200);
  t.like(retry.body, { commandId, status: 'accepted', aggregateVersion: 2 });
  const again = await post('/commands/UpgradeStatus?wait=30000', { aggregateId: 'gw-ann', commandId, data: { status: 'GOLD' } });
  t.deepEqual(again.body, retry.body);
  await versionOf('gw-ann', 2);
  const history = await get('/aggregates/User/gw-ann/history');
  t.deepEqual(history.body.events.map((e: { eventType: string }) => e.eventType), ['UserCreated', 'StatusUpgraded']);
});

test.serial('without wait the command is accepted for delivery (202) with where it was written', async (t) => {
  const r = await post('/commands/CreateUser', { aggregateId: 'gw-bob', commandId: 'gw-bob-create', data: { email: 'bob@x.example' } });
  t.is(r.status, 202);
  t.like(r.body, { commandId: 'gw-bob-create', aggregate: 'users', topic: env.topic('commands'), partition: partitionForKey('gw-bob', 12) });
  await versionOf('gw-bob', 1);
});

test('requests that cannot become a command are 400 answers naming the problem', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['/commands/CreateUser', { data: {} }, /missing field "aggregateId"/],
    ['/commands/CreateUser', { aggregateId: 'x', email: 'a@b' }, /unknown field "email".*command fields go in "data"/],
    ['/commands/CreateUser', { aggregateId: 'x', expectedVersion: -1 }, /"expectedVersion" must be an integer of at least 0/],
    ['/commands/CreateUser', { aggregateId: 'x', data: [1] }, /"data" must be an object/],
    ['/commands/CreateUser', '{not json', /not JSON/],
    ['/commands/CreateUser', [1, 2], /must be a JSON object/],
    ['/commands/CreateUser?wait=soon', { aggregateId: 'x' }, /wait=soon/],
  ];
  for (const [path, body, message] of cases) {
    const r = await post(path, body);
    t.is(r.status, 400, `${path} ${JSON.stringify(body)}`);
    t.regex(r.body.error, message);
  }
  const unknown = await post('/commands/CreateUser?aggregate=orders', { aggregateId: 'x' });
  t.is(unknown.status, 404);
  t.deepEqual(unknown.body.aggregates.map((a: { processor: string }) => a.processor), ['users']);
  t.is((await get('/commands/CreateUser')).status, 405);
});
