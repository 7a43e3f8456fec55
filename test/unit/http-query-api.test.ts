// The query API over committed stores held in memory (no broker): entries, listings, aggregate state, history and
// state as of a time through the decider's evolve, partitions not hosted or not running, 404s, the token, metrics.
import test from 'ava';
import { Registry } from 'prom-client';
import * as user from '../../examples/users/user.ts';
import { QueryApi, type QueryableProcessor, type StoreRead } from '../../src/http/query-api.ts';
import { HttpServer } from '../../src/http/server.ts';
import { join } from 'node:path';
import { historyKey } from '../../src/processors/aggregate/processor.ts';
import { loadUpcasters } from '../../src/processors/upcast/upcasters.ts';
import { loadTopology } from '../../src/topology/load.ts';
import type { AggregateInfo } from '../../src/processors/spec.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import type { EventEnvelope } from '../../src/serde/envelope.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { MemoryCommittedStore, type CommittedStore } from '../../src/state/committed-store.ts';
import { encodeValue } from '../../src/state/value-codec.ts';
import { ROOT } from '../helpers/cli.ts';
import { memoryLogger } from '../helpers/log.ts';

const PARTITIONS = 4;
/** the users example's upcasters (UserCreated v1 → v2: name becomes fullName, status ACTIVE by default) */
const USERS_UPCASTERS = await loadUpcasters(loadTopology(join(ROOT, 'topology.yaml')));

/** A processor with in-memory stores per partition; `states` says which partitions run here and how. */
function fakeProcessor(name: string, stores: string[], states: Record<number, string>, aggregate?: AggregateInfo): QueryableProcessor & { data: (p: number, s: string) => MemoryCommittedStore } {
  const data = new Map<string, MemoryCommittedStore>();
  const store = (p: number, s: string) => {
    const k = `${p}/${s}`;
    if (!data.has(k)) data.set(k, new MemoryCommittedStore(s));
    return data.get(k)!;
  };
  return {
    name,
    stores,
    partitions: PARTITIONS,
    aggregate,
    data: store,
    taskStates: () => states,
    async readCommitted<T>(p: number, s: string, fn: (c: CommittedStore) => Promise<T>): Promise<StoreRead<T>> {
      const state = states[p];
      if (state === undefined) return { ok: false, reason: 'not_hosted', state: undefined };
      if (state !== 'running') return { ok: false, reason: 'not_running', state };
      return { ok: true, value: await fn(store(p, s)) };
    },
  };
}

const usersInfo = (history: boolean): AggregateInfo => ({
  aggregateType: 'User',
  history,
  tenant: false,
  commandTypes: undefined,
  commandsTopic: 'user-commands',
  repliesTopic: 'user-command-results',
  initialState: user.initialState,
  evolve: async (s, e) => user.evolve(s as user.User, e),
  upcasters: USERS_UPCASTERS,
});

const event = (id: string, v: number, eventType: string, timestamp: string, data: Record<string, unknown>): EventEnvelope => ({
  eventId: `e-${id}-${v}`,
  eventType,
  eventVersion: 1,
  aggregateType: 'User',
  aggregateId: id,
  aggregateVersion: v,
  timestamp,
  userId: 'admin-7',
  correlationId: `c-${id}`,
  causationId: `cmd-${id}-${v}`,
  data,
});

const ALL_RUNNING = Object.fromEntries(Array.from({ length: PARTITIONS }, (_, p) => [p, 'running']));
const p1 = partitionForKey('u1', PARTITIONS);
const pOther = (p1 + 1) % PARTITIONS;
// a key that lands on pOther
const otherKey = Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => partitionForKey(k, PARTITIONS) === pOther)!;

async function serve(processors: QueryableProcessor[], token?: string) {
  const registry = new Registry();
  const metrics = new RuntimeMetrics(registry, { defaultMetrics: false });
  const http = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    token,
    registry,
    readiness: () => ({ ready: true, detail: {} }),
    log: memoryLogger(),
    onResponse: (route, status) => metrics.httpRequests.inc({ route, status: String(status) }),
  });
  new QueryApi(() => processors).register(http);
  const port = await http.listen();
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
    return { status: r.status, body: (await r.json()) as Record<string, any> };
  };
  return { http, get, registry, port };
}

function usersWorld(history = true, states: Record<number, string> = ALL_RUNNING) {
  const users = fakeProcessor('users', ['state', 'commands', ...(history ? ['history'] : [])], states, usersInfo(history));
  const events = [
    event('u1', 1, 'UserCreated', '2026-11-27T10:00:00.000Z', { email: 'a@x.example', fullName: 'Ann', status: 'ACTIVE' }),
    event('u1', 2, 'EmailChanged', '2026-11-27T11:00:00.000Z', { oldEmail: 'a@x.example', newEmail: 'b@x.example' }),
    event('u1', 3, 'StatusUpgraded', '2026-11-27T12:00:00.000Z', { oldStatus: 'ACTIVE', status: 'GOLD' }),
  ];
  void users.data(p1, 'state').apply([{ key: 'u1', value: encodeValue({ version: 3, state: { exists: true, email: 'b@x.example', fullName: 'Ann', status: 'GOLD' } }) }], {});
  if (history) {
    // an aggregate whose id starts with "u1:" shares the history prefix and must not leak into u1's trail
    const intruder = event('u1:x', 1, 'UserCreated', '2026-11-27T09:00:00.000Z', { email: 'z@x.example', fullName: 'Zed', status: 'VIP' });
    void users.data(p1, 'history').apply(
      [...events.map((e) => ({ key: historyKey('u1', e.aggregateVersion), value: encodeValue(e) })), { key: historyKey('u1:x', 1), value: encodeValue(intruder) }],
      {},
    );
  }
  const view = fakeProcessor('user-view', ['view'], states);
  void view.data(p1, 'view').apply([{ key: 'u1', value: encodeValue({ id: 'u1', email: 'b@x.example' }) }], {});
  void view.data(pOther, 'view').apply([{ key: otherKey, value: encodeValue({ id: otherKey }) }], {});
  const stateless = fakeProcessor('audit-filter', [], states);
  return { users, view, processors: [users, view, stateless] };
}

test('a store entry is served msgpack-decoded with its partition; an absent key is 404', async (t) => {
  const { processors } = usersWorld();
  const { http, get } = await serve(processors);
  t.teardown(() => http.close());
  t.deepEqual(await get('/stores/user-view/view/u1'), { status: 200, body: { key: 'u1', partition: p1, value: { id: 'u1', email: 'b@x.example' } } });
  const missing = await get('/stores/user-view/view/nobody');
  t.is(missing.status, 404);
  t.regex(missing.body.error, /no key "nobody" in store "view"/);
});

test('unknown processors and stores are 404 answers that list what exists', async (t) => {
  const { processors } = usersWorld();
  const { http, get } = await serve(processors);
  t.teardown(() => http.close());
  const p = await get('/stores/nope/view/u1');
  t.is(p.status, 404);
  t.deepEqual(p.body.processors.map((x: { name: string }) => x.name), ['users', 'user-view']);
  const s = await get('/stores/users/view/u1');
  t.is(s.status, 404);
  t.deepEqual(s.body.stores, ['state', 'commands', 'history']);
  const a = await get('/aggregates/Order/o1');
  t.is(a.status, 404);
  t.deepEqual(a.body.aggregates, [{ type: 'User', processor: 'users', history: true }]);
});

test('a listing returns the committed entries of every hosted partition in key order, with prefix and limit', async (t) => {
  const { processors, view } = usersWorld();
  await view.data(p1, 'view').apply(['u3', 'u2'].map((k) => ({ key: k, value: encodeValue({ id: k }) })), {});
  const { http, get } = await serve(processors);
  t.teardown(() => http.close());
  const all = await get('/stores/user-view/view');
  t.is(all.status, 200);
  t.deepEqual(all.body.partitions, [0, 1, 2, 3]);
  const byPartition = [...all.body.entries].sort((a, b) => a.partition - b.partition);
  t.deepEqual(all.body.entries, byPartition);
  t.deepEqual(all.body.entries.filter((e: { partition: number }) => e.partition === p1).map((e: { key: string }) => e.key), ['u1', 'u2', 'u3']);
  const prefixed = await get('/stores/user-view/view?prefix=u&limit=2');
  t.deepEqual(prefixed.body.entries.map((e: { key: string }) => e.key), ['u1', 'u2']);
  t.true(prefixed.body.truncated);
  const bad = await get('/stores/user-view/view?limit=0');
  t.is(bad.status, 400);
});

test('a key of a partition not hosted here is 421 with the hosted partitions; one restoring here is 503', async (t) => {
  const states = { [p1]: 'running', [pOther]: 'restoring' };
  const { processors } = usersWorld(true, states);
  const { http, get } = await serve(processors);
  t.teardown(() => http.close());
  const notHere = (p1 + 2) % PARTITIONS;
  const key = Array.from({ length: 100 }, (_, i) => `n${i}`).find((k) => partitionForKey(k, PARTITIONS) === notHere)!;
  const r = await get(`/stores/user-view/view/${key}`);
  t.is(r.status, 421);
  t.like(r.body, { partition: notHere, hosted: [p1, pOther].sort((a, b) => a - b) });
  const restoring = await get(`/stores/user-view/view/${otherKey}`);
  t.is(restoring.status, 503);
  t.like(restoring.body, { partition: pOther, state: 'restoring' });
  const agg = await get(`/aggregates/User/${key}`);
  t.is(agg.status, 421);
  // a listing searches what runs and reports the rest
  const list = await get('/stores/user-view/view');
  t.deepEqual(list.body.partitions, [p1]);
  t.deepEqual(list.body.unavailable, [{ partition: pOther, state: 'restoring' }]);
});

test('an aggregate by type or processor name: its version and state', async (t) => {
  const { processors } = usersWorld();
  const { http, get } = await serve(processors);
  t.teardown(() => http.close());
  const want = { aggregateType: 'User', aggregateId: 'u1', partition: p1, version: 3, state: { exists: true, email: 'b@x.example', fullName: 'Ann', status: 'GOLD' } };
  t.deepEqual(await get('/aggregates/User/u1'), { status: 200, body: want });
  t.deepEqual((await get('/aggregates/users/u1')).body, want);
  t.is((await get('/aggregates/User/u2')).status, 404);
});

test('the history lists the aggregate\'s events in version order, and not those of an id that only starts the same', async (t) => {
  const { processors } = usersWorld();
  const { http, get } = await serve(processors);
  t.teardown(() => http.close());
  const h = await get('/aggregates/User/u1/history');
  t.is(h.status, 200);
  t.deepEqual(
    h.body.events.map((e: Record<string, unknown>) => [e.aggregateVersion, e.eventType, e.timestamp, e.userId, e.causationId]),
    [
      [1, 'UserCreated', '2026-11-27T10:00:00.000Z', 'admin-7', 'cmd-u1-1'],
      [2, 'EmailChanged', '2026-11-27T11:00:00.000Z', 'admin-7', 'cmd-u1-2'],
      [3, 'StatusUpgraded', '2026-11-27T12:00:00.000Z', 'admin-7', 'cmd-u1-3'],
    ],
  );
  t.deepEqual(h.body.events[1].data, { oldEmail: 'a@x.example', newEmail: 'b@x.example' });
});

test('?at= rebuilds the state as of a time through the decider\'s evolve', async (t) => {
  const { processors } = usersWorld();
  const { http, get } = await serve(processors);
  t.teardown(() => http.close());
  const at = async (time: string) => (await get(`/aggregates/User/u1?at=${encodeURIComponent(time)}`)).body;
  t.like(await at('2026-11-27T10:30:00Z'), { version: 1, lastEventAt: '2026-11-27T10:00:00.000Z', laterEvents: 2, state: { email: 'a@x.example', status: 'ACTIVE' } });
  t.like(await at('2026-11-27T11:00:00.000Z'), { version: 2, state: { email: 'b@x.example', status: 'ACTIVE' } });
  t.like(await at('2026-11-28T00:00:00Z'), { version: 3, state: { email: 'b@x.example', status: 'GOLD' } });
  t.is((await get('/aggregates/User/u1?at=2026-11-27T09:00:00Z')).status, 404);
  t.like(await at(String(Date.parse('2026-11-27T11:30:00Z'))), { version: 2 });
  const bad = await get('/aggregates/User/u1?at=yesterday');
  t.is(bad.status, 400);
  t.regex(bad.body.error, /not a time/);
});

test('?at= lifts events the history kept at an old eventVersion with the topology\'s upcasters before evolve sees them', async (t) => {
  const users = fakeProcessor('users', ['state', 'commands', 'history'], ALL_RUNNING, usersInfo(true));
  // written before UserCreated v2: `name`, no status
  const v1 = { ...event('u1', 1, 'UserCreated', '2026-11-27T10:00:00.000Z', { email: 'a@x.example', name: 'Olga' }), eventVersion: 1 };
  void users.data(p1, 'history').apply([{ key: historyKey('u1', 1), value: encodeValue(v1) }], {});
  const { http, get } = await serve([users]);
  t.teardown(() => http.close());
  const r = await get('/aggregates/User/u1?at=2026-11-28T00:00:00Z');
  t.is(r.status, 200);
  t.deepEqual(r.body.state, { exists: true, email: 'a@x.example', fullName: 'Olga', status: 'ACTIVE' });
});

test('?at= and the history of an aggregate without history: true are 400 answers saying what to set', async (t) => {
  const { processors } = usersWorld(false);
  const { http, get } = await serve(processors);
  t.teardown(() => http.close());
  for (const path of ['/aggregates/User/u1?at=2026-11-27T10:30:00Z', '/aggregates/User/u1/history']) {
    const r = await get(path);
    t.is(r.status, 400, path);
    t.regex(r.body.error, /history: true/);
  }
  t.is((await get('/aggregates/User/u1')).status, 200);
});

test('with a token every query route needs it, the probes do not, and requests are counted by route and status', async (t) => {
  const { processors } = usersWorld();
  const { http, get, registry } = await serve(processors, 's3cret');
  t.teardown(() => http.close());
  t.is((await get('/stores/user-view/view/u1')).status, 401);
  t.is((await get('/aggregates/User/u1', { authorization: 'Bearer wrong' })).status, 401);
  t.is((await get('/stores/user-view/view/u1', { authorization: 'Bearer s3cret' })).status, 200);
  t.is((await get('/healthz')).status, 200);
  const counted = (await registry.getSingleMetric('foldstream_http_requests_total')!.get()).values.map((v) => [v.labels.route, v.labels.status, v.value]);
  t.deepEqual(
    counted.sort(),
    [
      ['healthz', '200', 1],
      ['store_get', '200', 1],
      ['unauthorized', '401', 2],
    ].sort(),
  );
});

test('under tenant partitioning the id is tenantId:aggregateId; without the tenant the answer says so', async (t) => {
  const orders = fakeProcessor('orders', ['state', 'commands'], ALL_RUNNING, { ...usersInfo(false), aggregateType: 'Order', tenant: true });
  const key = 'acme:o1';
  await orders.data(partitionForKey(key, PARTITIONS), 'state').apply([{ key, value: encodeValue({ version: 2, state: { total: 5 } }) }], {});
  const { http, get } = await serve([orders]);
  t.teardown(() => http.close());
  t.like((await get('/aggregates/Order/acme:o1')).body, { tenantId: 'acme', aggregateId: 'o1', version: 2, state: { total: 5 } });
  const bad = await get('/aggregates/Order/o1');
  t.is(bad.status, 400);
  t.regex(bad.body.error, /partitioned by tenant: ask for tenantId:aggregateId/);
});

test('?partition= looks a key up in the partition named, for stores not keyed by their input\'s key', async (t) => {
  const { processors, users } = usersWorld();
  // a commandId that hashes elsewhere: only ?partition= finds it
  const id = Array.from({ length: 100 }, (_, i) => `cmd-${i}`).find((k) => partitionForKey(k, PARTITIONS) !== pOther)!;
  await users.data(pOther, 'commands').apply([{ key: id, value: encodeValue({ commandId: id, status: 'accepted' }) }], {});
  const { http, get } = await serve(processors);
  t.teardown(() => http.close());
  t.is((await get(`/stores/users/commands/${id}`)).status, 404);
  t.like((await get(`/stores/users/commands/${id}?partition=${pOther}`)).body, { key: id, partition: pOther, value: { status: 'accepted' } });
  t.is((await get(`/stores/users/commands/${id}?partition=${PARTITIONS}`)).status, 400);
});

test('blue/green: reads of the old name are answered by the old version until the new one runs the partition and has caught up, then by the new one for good', async (t) => {
  const oldStates: Record<number, string> = { ...ALL_RUNNING };
  const newStates: Record<number, string> = { ...ALL_RUNNING, [p1]: 'restoring' };
  const lags: Record<string, number | undefined> = { old: undefined, new: undefined };
  const old = { ...fakeProcessor('user-view', ['view'], oldStates), lag: async () => lags.old };
  const next = { ...fakeProcessor('user-view-v2', ['view'], newStates), replaces: 'user-view', lag: async () => lags.new };
  void old.data(p1, 'view').apply([{ key: 'u1', value: encodeValue({ v: 1 }) }], {});
  void old.data(pOther, 'view').apply([{ key: otherKey, value: encodeValue({ v: 1 }) }], {});
  void next.data(p1, 'view').apply([{ key: 'u1', value: encodeValue({ v: 2 }) }], {});
  void next.data(pOther, 'view').apply([{ key: otherKey, value: encodeValue({ v: 2 }) }], {});
  const { http, port } = await serve([old, next]);
  t.teardown(() => http.close());
  const read = async (key: string) => {
    const r = await fetch(`http://127.0.0.1:${port}/stores/user-view/view/${key}`);
    return { status: r.status, by: r.headers.get('x-foldstream-processor'), value: ((await r.json()) as { value?: unknown }).value };
  };
  // the new version restores p1: the old one answers
  t.deepEqual(await read('u1'), { status: 200, by: 'user-view', value: { v: 1 } });
  // it runs but has committed nothing yet (no lag known): still the old one
  newStates[p1] = 'running';
  t.like(await read('u1'), { by: 'user-view' });
  // behind the old one: the old one
  lags.old = 2;
  lags.new = 500;
  t.like(await read('u1'), { by: 'user-view' });
  // caught up as far as the old one: the new one, and for good, even when it falls behind again
  lags.new = 2;
  t.deepEqual(await read('u1'), { status: 200, by: 'user-view-v2', value: { v: 2 } });
  lags.new = 900;
  t.like(await read('u1'), { by: 'user-view-v2' });
  // per partition: the other partition switches on its own reading
  lags.new = 3;
  t.like(await read(otherKey), { by: 'user-view' });
  // the name of the new version is answered by it directly
  const direct = await fetch(`http://127.0.0.1:${port}/stores/user-view-v2/view/${otherKey}`);
  t.is(direct.headers.get('x-foldstream-processor'), 'user-view-v2');
});

test('blue/green: once the old version has left the app, its name is answered by the new version', async (t) => {
  const next = { ...fakeProcessor('user-view-v2', ['view'], ALL_RUNNING), replaces: 'user-view' };
  void next.data(p1, 'view').apply([{ key: 'u1', value: encodeValue({ v: 2 }) }], {});
  const { http, get } = await serve([next]);
  t.teardown(() => http.close());
  t.like(await get('/stores/user-view/view/u1'), { status: 200, body: { value: { v: 2 } } });
});
