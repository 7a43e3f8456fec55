/**
 * The saga workload's verifier model (verify/model-saga.ts) against what foldstream writes for a few orders, without
 * a broker: the workload's topology runs in the TopologyTestDriver and its records (and its stores, as changelog
 * records) are handed to the model as the verifier would read them. The paths a chaos run cannot reach on purpose are
 * here too: a step timeout (a PlaceOrder without an amount leaves ChargePayment unanswered, then the wall clock passes
 * the hour). Then each anomaly the model claims to find is planted and must be found: a saga command written twice,
 * an event lost, a wrong saga store value, a stock store off by one, a timeout the log puts at the wrong step.
 */
import test from 'ava';
import { pack } from 'msgpackr';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { SagaModel } from './verify/model-saga.ts';
import type { VRecord } from './verify/read-topics.ts';
import { problemsOf } from './verify/verifier.ts';
import { changelogName, partitionOf } from './verify/wire.ts';
import { sagaTopics, sagaWorkload } from './workloads/saga.ts';

const APP = 'model-saga';
const P = 12;
const T = sagaTopics(APP);

interface World {
  /** records per topic name, in append order per partition */
  records: VRecord[];
}

async function world(): Promise<World> {
  const yaml = sagaWorkload.topologyYaml({ app: APP, brokers: ['unused:1'], partitions: P, replicationFactor: 1, commitIntervalMs: 100, maxBufferedRecords: 100, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000, transactionTimeoutMs: 60_000, maxRecordBytes: 16_384 });
  const d = await TopologyTestDriver.fromYaml(yaml, process.cwd());
  const records: VRecord[] = [];
  const next = new Map<string, bigint>();
  const append = (topic: string, partition: number, key: string | null, value: unknown, timestamp: number) => {
    const k = `${topic}:${partition}`;
    const offset = next.get(k) ?? 0n;
    next.set(k, offset + 1n);
    const bytes = value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value), 'utf8');
    records.push({ topic, partition, offset, key: key === null ? null : Buffer.from(key, 'utf8'), value: bytes, headers: {}, timestamp });
  };
  const outputs = [T.orderCommands, T.inventoryCommands, T.paymentCommands, T.events, T.replies, T.sagaLog, T.repartition];
  const step = async (what: () => Promise<unknown>) => {
    const mark = d.mark();
    await what();
    for (const topic of outputs) for (const r of d.output(topic, { since: mark })) append(topic, r.partition, r.key === null ? null : String(r.key), r.value, r.timestamp);
  };
  const command = (topic: string, commandId: string, commandType: string, aggregateId: string, data: Record<string, unknown>) =>
    step(async () => {
      const value = { commandId, commandType, aggregateId, userId: 'u1', timestamp: '2026-11-28T00:00:00.000Z', data };
      append(topic, partitionOf(aggregateId, P), aggregateId, value, d.now);
      await d.pipe(topic, aggregateId, value);
    });
  await command(T.inventoryCommands, 'g-1', 'AddStock', 'sku-01', { quantity: 5 });
  await command(T.orderCommands, 'g-2', 'PlaceOrder', 'ord-1', { customerId: 'c', sku: 'sku-01', quantity: 2, amount: 100 }); // completed
  await command(T.orderCommands, 'g-3', 'PlaceOrder', 'ord-2', { customerId: 'c', sku: 'sku-01', quantity: 1, amount: 2000 }); // declined: compensated
  await command(T.orderCommands, 'g-4', 'PlaceOrder', 'ord-3', { customerId: 'c', sku: 'sku-01', quantity: 9, amount: 10 }); // stock unavailable: failed
  await command(T.orderCommands, 'g-5', 'PlaceOrder', 'ord-4', { customerId: 'c', sku: 'sku-01', quantity: 0, amount: 10 }); // BAD_QUANTITY: no saga
  await command(T.orderCommands, 'g-2', 'PlaceOrder', 'ord-1', { customerId: 'c', sku: 'sku-01', quantity: 2, amount: 100 }); // a retry
  await command(T.orderCommands, 'g-6', 'PlaceOrder', 'ord-5', { customerId: 'c', sku: 'sku-01', quantity: 1 }); // no amount: ChargePayment unanswered
  await step(() => d.advanceWallClock(3_600_000 + 5000)); // charge-payment of ord-5 times out
  // the stores as their changelogs would hold them: the last value per key, and a position marker per partition
  const inputs: Record<string, string> = { orders: T.orderCommands, inventory: T.inventoryCommands, payments: T.paymentCommands, 'order-fulfilment-instances': T.repartition };
  for (const [processor, stores] of [['orders', ['state', 'commands']], ['inventory', ['state', 'commands']], ['payments', ['state', 'commands']], ['order-fulfilment-instances', ['sagas', 'deadlines']]] as const) {
    for (const store of stores) {
      const topic = changelogName(APP, processor, store);
      const input = inputs[processor]!;
      for (const [key, value] of await d.store(processor, store)) {
        // a store key's partition: its task's, which is its input key's (the commands store: the aggregate's)
        const owner = store === 'commands' ? String((value as { aggregateId: string }).aggregateId) : store === 'deadlines' ? String(value) : String(key);
        append(topic, partitionOf(owner, P), String(key), pack(value), 0);
      }
      for (let p = 0; p < P; p++) {
        const end = next.get(`${input}:${p}`);
        if (end !== undefined) append(topic, p, '\u0000position', pack({ offsets: { [input]: String(end) }, streamTime: 0 }), 0);
      }
    }
  }
  return { records };
}

function verifyWorld(w: World) {
  const m = new SagaModel({ app: APP, ...T, partitions: P, maxRecordBytes: 16_384 });
  const inputs = new Set(m.inputTopics);
  for (const r of w.records) if (inputs.has(r.topic)) m.onInput(r);
  for (const r of w.records) if (!inputs.has(r.topic) && m.outputTopics.includes(r.topic)) m.onOutput(r);
  const findings = m.finish();
  return { findings, problems: problemsOf(findings, { partitionsChecked: 0, open: [], committedRecords: {}, abortedRecords: {} }) };
}

const json = (r: VRecord) => JSON.parse(r.value!.toString('utf8')) as Record<string, unknown>;

test('a world foldstream wrote (completed, compensated, failed, rejected, retried, timed out) passes the saga model', async (t) => {
  const { findings, problems } = verifyWorld(await world());
  t.deepEqual(problems, []);
  const s = findings.stats;
  t.like(s, { sagasStarted: 4, sagasCompleted: 1, sagasCompensated: 2, sagasFailed: 1, sagasTimedOut: 1, sagasRunning: 0, 'rejected BAD_QUANTITY': 1, retriedCommandIds: 1 });
});

test('a saga command written twice is found', async (t) => {
  const w = await world();
  const reserve = w.records.find((r) => r.topic === T.inventoryCommands && json(r).commandType === 'ReserveStock')!;
  w.records.push({ ...reserve, offset: 1000n });
  const { problems } = verifyWorld(w);
  t.true(problems.some((p) => p.includes('(saga commands)') && p.includes('duplicates')), problems.join('\n'));
});

test('a lost event is found', async (t) => {
  const w = await world();
  const i = w.records.findIndex((r) => r.topic === T.events && json(r).eventType === 'StockReserved');
  w.records.splice(i, 1);
  const { problems } = verifyWorld(w);
  t.true(problems.some((p) => p.includes(`output ${T.events}`) && p.includes('losses')), problems.join('\n'));
  t.true(problems.some((p) => p.includes('saga outcomes')), problems.join('\n'));
});

test('a wrong saga store value is found', async (t) => {
  const w = await world();
  const topic = changelogName(APP, 'order-fulfilment-instances', 'sagas');
  const r = w.records.find((x) => x.topic === topic && x.key?.toString() === 'ord-1')!;
  const { unpack } = await import('msgpackr');
  r.value = pack({ ...(unpack(r.value!) as object), reactions: 5 });
  const { problems } = verifyWorld(w);
  t.true(problems.some((p) => p.includes('store order-fulfilment sagas') && p.includes('ord-1')), problems.join('\n'));
});

test('stock off by one in the inventory store is found, by the store and by the conservation check', async (t) => {
  const w = await world();
  const topic = changelogName(APP, 'inventory', 'state');
  const r = w.records.find((x) => x.topic === topic && x.key?.toString() === 'sku-01')!;
  const { unpack } = await import('msgpackr');
  const v = unpack(r.value!) as { version: number; state: { available: number } };
  r.value = pack({ ...v, state: { available: v.state.available + 1 } });
  const { problems } = verifyWorld(w);
  t.true(problems.some((p) => p.includes('store inventory state')), problems.join('\n'));
  t.true(problems.some((p) => p.includes('saga outcomes') && p.includes('sku-01: available')), problems.join('\n'));
});

test('a timeout the log puts at a step the instance was not at is found', async (t) => {
  const w = await world();
  const r = w.records.find((x) => x.topic === T.sagaLog && json(x).eventType === 'SagaTimedOut')!;
  const v = json(r);
  r.value = Buffer.from(JSON.stringify({ ...v, data: { ...(v.data as object), deadline: 'reserve-stock' } }));
  const { problems } = verifyWorld(w);
  // the model follows the log to a timeout at reserve-stock: then the log's later entries, the commands (a
  // ChargePayment and a RefundPayment no such saga sends) and the stored instance all disagree with it
  t.true(problems.some((p) => p.includes(`output ${T.sagaLog}`) && p.includes('wrong')), problems.join('\n'));
  t.true(problems.some((p) => p.includes('(saga commands)') && p.includes('unexpected: key ord-5 id ChargePayment')), problems.join('\n'));
  t.true(problems.some((p) => p.includes('store order-fulfilment sagas') && p.includes('ord-5')), problems.join('\n'));
});
