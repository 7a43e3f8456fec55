// The orders example's saga end to end on the real broker: three aggregates and the order-fulfilment saga, its
// events re-keyed through the repartition topic, a wall-clock deadline firing in the runtime, and everything read
// back with read_committed: one saga log per order with one start and one end, no command sent twice, one reply per
// command, states that agree with the outcomes, stock conserved. Then a second instance with an empty state folder
// takes over: it restores the saga instances from their changelog, so a late answer to an ended saga changes nothing.
import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { App } from '../../src/app/app.ts';
import type { CommandEnvelope, EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { loadTopology, type LoadedTopology } from '../../src/topology/load.ts';
import { changelogTopic, internalTopics } from '../../src/topology/names.ts';
import { untilRunning } from '../helpers/app-ready.ts';
import { ROOT } from '../helpers/cli.ts';
import { changelogState } from '../helpers/counting-app.ts';
import { BROKERS, deleteTopics, kafka, readAll, unique, type ReadRecord } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { metricValue } from '../helpers/processes.ts';
import { readUntil } from '../helpers/users-app.ts';

interface Doc {
  app: string;
  kafka: { brokers: string };
  processing: Record<string, unknown>;
  topics: Record<string, { name: string }>;
  processors: Record<string, unknown>[];
}

let dir: string;
let loaded: LoadedTopology;
const topic = (alias: string) => loaded.topology.topics[alias]!.name;
const json = <T>(r: ReadRecord) => JSON.parse(String(r.value)) as T;
/** A store as its changelog has it (read_committed). */
const store = async <V>(processor: string, name: string) => (await changelogState(changelogTopic(loaded.topology.app, processor, name))) as Map<string, V>;

test.before(() => {
  const app = unique('orders');
  dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const doc = parse(readFileSync(join(ROOT, 'examples/orders/topology.yaml'), 'utf8')) as Doc;
  doc.app = app;
  doc.kafka.brokers = BROKERS.join(',');
  doc.processing = { commitIntervalMs: 100, sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 };
  for (const t of Object.values(doc.topics)) t.name = `${app}-${t.name}`;
  // payments never answer a charge of 13, so that order's charge-payment step times out (8 s after it began)
  const payments = doc.processors.find((p) => p.name === 'payments')!;
  payments.steps = [{ filter: "commandType != 'ChargePayment' or data.amount != 13" }];
  const saga = doc.processors.find((p) => p.name === 'order-fulfilment') as { flow: { name: string; timeoutMs?: number }[]; deadlines?: unknown };
  saga.flow.find((s) => s.name === 'charge-payment')!.timeoutMs = 8000;
  saga.deadlines = { clock: 'wall-clock', checkIntervalMs: 250 };
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, stringify(doc));
  loaded = loadTopology(file, { env: { ...process.env, HTTP_PORT: '0', STATE_DIR: join(dir, 'state') } });
});

test.after.always(async () => {
  if (!loaded) return;
  const t = loaded.topology;
  await deleteTopics([...Object.values(t.topics).map((x) => x.name), ...internalTopics(t).map((x) => x.name)]);
  rmSync(dir, { recursive: true, force: true });
});

const command = (commandId: string, commandType: string, aggregateId: string, data: Record<string, unknown>): CommandEnvelope => ({ commandId, commandType, aggregateId, data });

async function send(alias: string, commands: CommandEnvelope[]): Promise<void> {
  const producer = kafka('orders-client').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic: topic(alias), acks: -1, messages: commands.map((c) => ({ key: c.aggregateId, value: JSON.stringify(c) })) });
  } finally {
    await producer.disconnect();
  }
}

const stateDir = (name: string) => {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
};

const GOOD = 40;
const TERMINAL = new Set(['SagaCompleted', 'SagaCompensated']);

/** Saga log entries by saga id, read_committed. */
const logBySaga = (records: ReadRecord[]) => {
  const out = new Map<string, EventEnvelope[]>();
  for (const r of records) out.set(r.key!, [...(out.get(r.key!) ?? []), json<EventEnvelope>(r)]);
  return out;
};
const ended = (entries: EventEnvelope[] | undefined) =>
  !!entries && entries.some((e) => TERMINAL.has(e.eventType) || (e.eventType === 'SagaFailed' && e.data.compensating === false));

test.serial('orders run through the saga exactly once: completed, compensated, failed and timed out, each consistent', async (t) => {
  const app = new App(loaded, { log: memoryLogger(), stateDir: stateDir('a'), httpPort: 0 });
  await app.start();
  try {
    // deadlines count from the time of the order (record time, carried along the chain of commands and events)
    await untilRunning(app);
    await send('inventory-commands', [command('stock-a', 'AddStock', 'sku-a', { quantity: 100 }), command('stock-b', 'AddStock', 'sku-b', { quantity: 1 })]);
    const orders = [
      ...Array.from({ length: GOOD }, (_, i) => command(`place-${i}`, 'PlaceOrder', `o-${i}`, { customerId: 'c', sku: 'sku-a', quantity: 1, amount: 100 })),
      command('place-declined', 'PlaceOrder', 'o-declined', { customerId: 'c', sku: 'sku-a', quantity: 3, amount: 5000 }),
      command('place-short', 'PlaceOrder', 'o-short', { customerId: 'c', sku: 'sku-b', quantity: 5, amount: 10 }),
      command('place-timeout', 'PlaceOrder', 'o-timeout', { customerId: 'c', sku: 'sku-a', quantity: 2, amount: 13 }),
    ];
    await send('order-commands', orders);
    const ids = orders.map((o) => o.aggregateId);
    const log = logBySaga(await readUntil([topic('saga-log')], (rs) => ids.every((id) => ended(logBySaga(rs).get(id))), 'every saga to end', 180_000));

    // the saga log: per order one start, one end, versions 1..n, and the path each outcome takes
    t.deepEqual([...log.keys()].sort(), [...ids].sort());
    for (const [id, entries] of log) {
      t.deepEqual(entries.map((e) => e.aggregateVersion), entries.map((_, i) => i + 1), `${id}: log versions`);
      t.is(entries.filter((e) => e.eventType === 'SagaStarted').length, 1, `${id}: one start`);
      t.is(new Set(entries.map((e) => e.eventId)).size, entries.length, `${id}: no entry twice`);
    }
    const path = (id: string) => log.get(id)!.map((e) => e.eventType).join(' ');
    for (let i = 0; i < GOOD; i++) t.is(path(`o-${i}`), 'SagaStarted SagaStepCompleted SagaStepCompleted SagaStepCompleted SagaCompleted');
    t.is(path('o-declined'), 'SagaStarted SagaStepCompleted SagaFailed SagaCompensated');
    t.is(path('o-short'), 'SagaStarted SagaFailed');
    t.is(path('o-timeout'), 'SagaStarted SagaStepCompleted SagaTimedOut SagaFailed SagaCompensated');

    // commands: none twice, each answered exactly once (the timed-out charge excepted: payments dropped it)
    const commandTopics = ['order-commands', 'inventory-commands', 'payment-commands'].map(topic);
    const sent = (await readAll(commandTopics)).map((r) => json<CommandEnvelope>(r));
    const sagaCommands = sent.filter((c) => !c.commandId.startsWith('place-') && !c.commandId.startsWith('stock-'));
    t.is(new Set(sent.map((c) => c.commandId)).size, sent.length, 'no commandId twice on the command topics');
    t.is(sagaCommands.length, GOOD * 3 + 4 + 2 + 5);
    const replies = (await readAll([topic('replies')])).map((r) => json<Reply>(r));
    const repliesById = new Map<string, Reply[]>();
    for (const r of replies) repliesById.set(r.commandId, [...(repliesById.get(r.commandId) ?? []), r]);
    const charge13 = sagaCommands.find((c) => c.commandType === 'ChargePayment' && c.aggregateId === 'o-timeout')!;
    for (const c of sent) t.is(repliesById.get(c.commandId)?.length ?? 0, c === charge13 ? 0 : 1, `replies to ${c.commandType} ${c.aggregateId}`);
    // the timeout compensated the step that timed out (a refund, rejected: nothing was charged) and the reservation
    const afterTimeout = sagaCommands.filter((c) => c.aggregateId === 'o-timeout' || c.data.orderId === 'o-timeout').map((c) => c.commandType);
    t.deepEqual(afterTimeout.sort(), ['CancelOrder', 'ChargePayment', 'RefundPayment', 'ReleaseStock', 'ReserveStock']);
    t.like(repliesById.get(sagaCommands.find((c) => c.commandType === 'RefundPayment' && c.aggregateId === 'o-timeout')!.commandId)![0], { status: 'rejected', code: 'NOT_CHARGED' });

    // states agree with the outcomes, and stock is conserved: 100 - 40 reserved (the declined and timed-out released)
    const orderStates = await store<{ state: { status: string } }>('orders', 'state');
    for (let i = 0; i < GOOD; i++) t.is(orderStates.get(`o-${i}`)?.state.status, 'CONFIRMED');
    for (const id of ['o-declined', 'o-short', 'o-timeout']) t.is(orderStates.get(id)?.state.status, 'CANCELLED', id);
    const stock = await store<{ state: { available: number } }>('inventory', 'state');
    t.is(stock.get('sku-a')?.state.available, 100 - GOOD);
    t.is(stock.get('sku-b')?.state.available, 1);
    const sagas = await store<{ status: string; deadline: unknown }>('order-fulfilment-instances', 'sagas');
    t.is([...sagas.values()].filter((s) => s.status === 'completed').length, GOOD);
    t.like(sagas.get('o-timeout'), { status: 'compensated', deadline: null });
    t.like(sagas.get('o-short'), { status: 'failed' });
    // and no deadline is left in the index
    const deadlines = await store('order-fulfilment-instances', 'deadlines');
    t.is(deadlines.size, 0);

    const metrics = await app.registry.metrics();
    t.is(metricValue(metrics, 'foldstream_saga_lifecycle_total', { processor: 'order-fulfilment-instances', event: 'completed' }), GOOD);
    t.is(metricValue(metrics, 'foldstream_saga_lifecycle_total', { processor: 'order-fulfilment-instances', event: 'timed_out' }), 1);
  } finally {
    await app.stop();
  }
});

test.serial('a new instance with an empty state folder restores the sagas from their changelog: a late answer finds its saga ended', async (t) => {
  const app = new App(loaded, { log: memoryLogger(), stateDir: stateDir('b'), httpPort: 0 });
  await app.start();
  try {
    const before = (await readAll([topic('saga-log')])).length;
    // the payment for the timed-out order arrives after all, as an event of the payments aggregate
    const late: EventEnvelope = {
      eventId: 'late-payment',
      eventType: 'PaymentCharged',
      eventVersion: 1,
      aggregateType: 'Payment',
      aggregateId: 'o-timeout',
      aggregateVersion: 9,
      timestamp: new Date().toISOString(),
      data: { orderId: 'o-timeout', amount: 13 },
    };
    const producer = kafka('late').producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic: topic('payment-events'), acks: -1, messages: [{ key: 'o-timeout', value: JSON.stringify(late) }] });
    await producer.disconnect();
    // and one more order, to know when the saga has read past the late event
    await send('order-commands', [command('place-after', 'PlaceOrder', 'o-after', { customerId: 'c', sku: 'sku-a', quantity: 1, amount: 100 })]);
    const log = logBySaga(await readUntil([topic('saga-log')], (rs) => ended(logBySaga(rs).get('o-after')), 'the new order to complete', 120_000));
    t.is(log.get('o-after')!.at(-1)!.eventType, 'SagaCompleted');
    t.is(log.get('o-timeout')!.length, 5, 'nothing was added to the ended saga');
    t.is((await readAll([topic('saga-log')])).length, before + 5);
    const metrics = await app.registry.metrics();
    t.true(metricValue(metrics, 'foldstream_saga_events_total', { processor: 'order-fulfilment-instances', outcome: 'ended' }) >= 1);
    t.true(metricValue(metrics, 'foldstream_restore_records_total', { processor: 'order-fulfilment-instances', store: 'sagas' }) > 0, 'the sagas were restored');
  } finally {
    await app.stop();
  }
});
