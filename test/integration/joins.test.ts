// Joins on the real broker, declared in YAML, one processor of each kind in one app, against independent models:
// a stream-table left join re-keyed by customer through its repartition topic (each order joins its customer's row
// of the phase it came in), a foreign-key join of order rows with their customers (customer changes and deletions of
// both sides, the last row of each order is its current customer's), a table-table outer join, and a stream-stream
// join of orders and payments within ten minutes (each pair exactly once). Halfway the instance stops and another
// starts on an empty state directory: the join stores are restored from their changelogs, and the results still
// equal the models (no pair twice, none lost). The TopologyTestDriver, given the same records in the same order,
// writes the same results.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from '../../src/app/app.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { internalTopics } from '../../src/topology/names.ts';
import { BROKERS, deleteTopics, endOffsets, kafka, readAll, unique, withAdmin } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { prng } from '../helpers/prng.ts';
import { latestByKey, waitForConsumed } from '../helpers/users-app.ts';

const MIN = 60_000;
const BASE = Date.parse('2026-03-01T08:00:00Z');

const topologyYaml = (app: string) => `
app: ${app}
kafka: { brokers: "${BROKERS.join(',')}" }
processing: { commitIntervalMs: 100, sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 }
http: { enabled: false }
topics:
  order-events: { name: ${app}-order-events, partitions: 3 }
  payment-events: { name: ${app}-payment-events, partitions: 3 }
  customers: { name: ${app}-customers, partitions: 2, config: { cleanup.policy: compact } }
  order-rows: { name: ${app}-order-rows, partitions: 3, config: { cleanup.policy: compact } }
  shipments: { name: ${app}-shipments, partitions: 3, config: { cleanup.policy: compact } }
  enriched: { name: ${app}-orders-enriched, partitions: 2 }
  with-customer: { name: ${app}-orders-with-customer, partitions: 3 }
  shipped: { name: ${app}-orders-shipped, partitions: 3 }
  paid: { name: ${app}-orders-paid, partitions: 3 }
processors:
  - name: enriched
    type: join
    kind: stream-table
    join: left
    input: order-events
    right: customers
    key: data.customerId
    select: { orderId: left.aggregateId, customer: right.name }
    output: enriched
  - name: with-customer
    type: join
    kind: foreign-key
    input: order-rows
    right: customers
    foreignKey: customerId
    select: { total: left.total, customer: right.name }
    output: with-customer
  - name: shipped
    type: join
    kind: table-table
    join: outer
    input: order-rows
    right: shipments
    select: { total: left.total, carrier: right.carrier }
    output: shipped
  - name: paid
    type: join
    kind: stream-stream
    input: order-events
    right: payment-events
    eventTypes: { left: [OrderPlaced], right: [PaymentCharged] }
    window: { beforeMs: 0, afterMs: 600000, graceMs: 86400000 }
    select: { order: left.aggregateId, amount: right.data.amount }
    output: paid
`;

type Row = Record<string, unknown> | null;

/** Every record the test sends, in order: the TopologyTestDriver gets the same ones afterwards. */
const sent: { topic: string; key: string; value: unknown; time?: number }[] = [];

async function send(topic: string, partitions: number, records: { key: string; value: unknown; time?: number }[]): Promise<void> {
  sent.push(...records.map((r) => ({ topic, ...r })));
  const producer = kafka('join-test-producer').producer();
  await producer.connect();
  try {
    await producer.send({
      topic,
      messages: records.map((r) => ({
        key: r.key,
        partition: partitionForKey(r.key, partitions),
        ...(r.time === undefined ? {} : { timestamp: String(r.time) }),
        value: r.value === null ? null : JSON.stringify(r.value),
      })),
    });
  } finally {
    await producer.disconnect();
  }
}

const envelope = (eventType: string, aggregateType: string, id: string, n: number, time: number, data: Record<string, unknown>) => ({
  eventId: `${eventType}-${id}-${n}`,
  eventType,
  eventVersion: 1,
  aggregateType,
  aggregateId: id,
  aggregateVersion: 1,
  timestamp: new Date(time).toISOString(),
  data,
});

async function running(a: App, tasks: Record<string, number>, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { processors } = a.readiness().detail as { processors: Record<string, { tasks: Record<number, string> }> };
    const ok = Object.entries(tasks).every(([p, n]) => Object.values(processors[p]?.tasks ?? {}).filter((s) => s === 'running').length === n);
    if (a.ready && ok) return;
    if (Date.now() > until) throw new Error(`the app did not start all its tasks: ${JSON.stringify(processors)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('stream-table, foreign-key, table-table and stream-stream joins from YAML equal their models across a restart that restores the join stores', async (t) => {
  const app = unique('joins');
  const dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, topologyYaml(app));
  const loaded = loadTopology(file);
  const topic = (alias: string) => loaded.topology.topics[alias]!.name;
  const tasks = { enriched: 3, 'enriched-joined': 2, 'with-customer': 3, 'with-customer-subscriptions': 2, shipped: 3, paid: 3 };
  const apps: App[] = [];
  const rand = prng(2027);
  // the models
  const customers = new Map<string, Row>();
  const orderRows = new Map<string, Row>();
  const shipments = new Map<string, Row>();
  const orderTimes: { id: string; time: number }[] = [];
  const payments: { id: string; time: number; amount: number }[] = [];

  const start = async (name: string) => {
    const a = new App(loaded, { log: memoryLogger(), stateDir: join(dir, name) });
    apps.push(a);
    await a.start();
    await running(a, tasks);
    return a;
  };
  const groups: [string, string][] = [
    ['enriched', topic('order-events')],
    ['enriched-joined', `${app}-enriched-repartition`],
    ['enriched-joined', topic('customers')],
    ['with-customer', topic('order-rows')],
    ['with-customer-subscriptions', topic('customers')],
    ['shipped', topic('order-rows')],
    ['shipped', topic('shipments')],
    ['paid', topic('order-events')],
    ['paid', topic('payment-events')],
  ];
  // the foreign-key join's stages answer each other: wait until neither internal topic grows any more
  const internal = [`${app}-with-customer-repartition`, `${app}-with-customer-response`];
  const caughtUp = async () => {
    let before = '';
    for (;;) {
      for (const [g, tp] of groups) await waitForConsumed(`${app}-${g}`, tp);
      await waitForConsumed(`${app}-with-customer-subscriptions`, internal[0]!);
      await waitForConsumed(`${app}-with-customer`, internal[1]!);
      const ends = JSON.stringify(await Promise.all(internal.map(async (x) => [...(await endOffsets(x, 'read_committed'))])), (_, v) => (typeof v === 'bigint' ? String(v) : v));
      if (ends === before) return;
      before = ends;
    }
  };

  let clock = BASE;
  let n = 0;
  const phase = async () => {
    // customers first, consumed by the stream-table join's table before the orders come (on a broker the two inputs
    // interleave as they arrive: which row an order meets is only defined once its table is read)
    const cs: { key: string; value: Row }[] = [];
    for (let i = 0; i < 12; i++) {
      const key = `c${Math.floor(rand() * 8)}`;
      const value = rand() < 0.2 ? null : { name: `${key}-${n}-${i}` };
      cs.push({ key, value });
      customers.set(key, value);
    }
    await send(topic('customers'), 2, cs);
    await caughtUp();

    const orders: { key: string; value: unknown; time: number }[] = [];
    const rows: { key: string; value: Row }[] = [];
    const ships: { key: string; value: Row }[] = [];
    const pays: { key: string; value: unknown; time: number }[] = [];
    for (let i = 0; i < 60; i++, n++) {
      const id = `o${Math.floor(rand() * 25)}`;
      const r = rand();
      clock += Math.floor(rand() * 3 * MIN);
      if (r < 0.35) {
        const customerId = `c${Math.floor(rand() * 9)}`; // c8 never exists
        orders.push({ key: `o-${n}`, value: envelope('OrderPlaced', 'Order', `o-${n}`, n, clock, { customerId }), time: clock });
        orderTimes.push({ id: `o-${n}`, time: clock });
        if (rand() < 0.7) {
          const time = clock + Math.floor(rand() * 14 * MIN) - 2 * MIN;
          const amount = 1 + Math.floor(rand() * 100);
          pays.push({ key: `o-${n}`, value: envelope('PaymentCharged', 'Payment', `o-${n}`, n, time, { amount }), time });
          payments.push({ id: `o-${n}`, time, amount });
        }
      } else if (r < 0.8) {
        const value = rand() < 0.15 ? null : { ...(rand() < 0.1 ? {} : { customerId: `c${Math.floor(rand() * 9)}` }), total: n };
        rows.push({ key: id, value });
        orderRows.set(id, value);
      } else {
        const value = rand() < 0.2 ? null : { carrier: `carrier-${n}` };
        ships.push({ key: id, value });
        shipments.set(id, value);
      }
      // a customer changes now and then while rows and their answers are in flight
      if (rand() < 0.1) {
        const key = `c${Math.floor(rand() * 8)}`;
        const value = { name: `${key}-late-${n}` };
        await send(topic('order-rows'), 3, rows.splice(0));
        await send(topic('customers'), 2, [{ key, value }]);
        customers.set(key, value);
      }
    }
    await send(topic('order-rows'), 3, rows);
    await send(topic('shipments'), 3, ships);
    await send(topic('payment-events'), 3, pays);
    // the stream-table join's table is changed only by the late customer changes above: orders come after them
    await caughtUp();
    return orders;
  };

  try {
    const a = await start('a');
    const first = await phase();
    // the orders of this phase join the customers as they are now
    const want1 = first.map((o) => {
      const e = o.value as { aggregateId: string; data: { customerId: string } };
      const c = customers.get(e.data.customerId);
      return { orderId: e.aggregateId, ...(c ? { customer: c.name } : {}) };
    });
    await send(topic('order-events'), 3, first);
    await caughtUp();
    await a.stop();
    apps.splice(apps.indexOf(a), 1);

    // a new instance on an empty state directory: every join store comes back from its changelog
    const b = await start('b');
    const second = await phase();
    const want2 = second.map((o) => {
      const e = o.value as { aggregateId: string; data: { customerId: string } };
      const c = customers.get(e.data.customerId);
      return { orderId: e.aggregateId, ...(c ? { customer: c.name } : {}) };
    });
    await send(topic('order-events'), 3, second);
    await caughtUp();

    const sortBy = (xs: Record<string, unknown>[], k: string) => [...xs].sort((x, y) => String(x[k]).localeCompare(String(y[k])));
    const enriched = (await readAll([topic('enriched')])).map((r) => JSON.parse(String(r.value)) as Record<string, unknown>);
    t.deepEqual(sortBy(enriched, 'orderId'), sortBy([...want1, ...want2], 'orderId'), 'every order once, with the customer of its phase');
    t.true(want1.some((w) => w.customer === undefined) && want1.some((w) => w.customer !== undefined));

    const fk = latestByKey(await readAll([topic('with-customer')]));
    const fkWant: Record<string, unknown> = {};
    for (const [id, row] of orderRows) {
      const c = row?.customerId === undefined ? undefined : customers.get(row.customerId as string);
      if (row && c) fkWant[id] = { total: row.total, customer: c.name };
    }
    t.deepEqual(fk, Object.fromEntries(Object.entries(fkWant).sort(([x], [y]) => (x < y ? -1 : 1))), 'each order row joins its current customer');
    t.true(Object.keys(fkWant).length > 5);

    const shipped = latestByKey(await readAll([topic('shipped')]));
    const shippedWant: Record<string, unknown> = {};
    for (const id of new Set([...orderRows.keys(), ...shipments.keys()])) {
      const l = orderRows.get(id) ?? undefined;
      const r = shipments.get(id) ?? undefined;
      if (l || r) shippedWant[id] = { ...(l ? { total: l.total } : {}), ...(r ? { carrier: r.carrier } : {}) };
    }
    t.deepEqual(shipped, Object.fromEntries(Object.entries(shippedWant).sort(([x], [y]) => (x < y ? -1 : 1))), 'the outer join of the two tables');

    const paid = (await readAll([topic('paid')])).map((r) => JSON.parse(String(r.value)) as Record<string, unknown>);
    const paidWant = payments
      .filter((p) => {
        const o = orderTimes.find((x) => x.id === p.id)!;
        return p.time >= o.time && p.time <= o.time + 10 * MIN;
      })
      .map((p) => ({ order: p.id, amount: p.amount }));
    t.deepEqual(sortBy(paid, 'order'), sortBy(paidWant, 'order'), 'each payment within ten minutes of its order, once');
    t.true(paidWant.length > 10 && paidWant.length < payments.length);

    // the join stores' changelogs are compacted; the table joins' outputs are views, the stream joins' are not
    const configs = await withAdmin((admin) =>
      admin.describeConfigs({
        includeSynonyms: false,
        resources: [topic('with-customer'), topic('shipped'), topic('paid'), topic('enriched')].map((name) => ({ type: 2, name, configNames: ['cleanup.policy'] })),
      }),
    );
    t.deepEqual(
      configs.resources.map((r) => [r.resourceName, r.configEntries[0]?.configValue]).sort(),
      [
        [topic('enriched'), 'delete'],
        [topic('paid'), 'delete'],
        [topic('shipped'), 'compact'],
        [topic('with-customer'), 'compact'],
      ].sort(),
    );
    void b;

    // the driver agrees with the runtime: the same records, in the order they were sent, give the same results
    const d = await TopologyTestDriver.fromLoaded(loaded);
    try {
      for (const r of sent) await d.pipe(r.topic, r.key, r.value, r.time === undefined ? {} : { timestamp: r.time });
      const values = (alias: string) => d.output(alias).map((r) => r.value as Record<string, unknown>);
      const latest = (alias: string) => Object.fromEntries([...d.latest(alias)].filter(([, v]) => v !== null).sort(([x], [y]) => (x < y ? -1 : 1)));
      t.deepEqual(sortBy(values('enriched'), 'orderId'), sortBy(enriched, 'orderId'), 'driver: stream-table');
      t.deepEqual(latest('with-customer'), fk, 'driver: foreign-key');
      t.deepEqual(latest('shipped'), shipped, 'driver: table-table');
      const key = (x: Record<string, unknown>) => `${String(x.order)}/${String(x.amount)}`;
      t.deepEqual(values('paid').map(key).sort(), paid.map(key).sort(), 'driver: stream-stream');
    } finally {
      await d.close();
    }
  } finally {
    for (const a of apps) await a.stop();
    await deleteTopics([...Object.values(loaded.topology.topics).map((x) => x.name), ...internalTopics(loaded.topology).map((x) => x.name)]);
    rmSync(dir, { recursive: true, force: true });
  }
});
