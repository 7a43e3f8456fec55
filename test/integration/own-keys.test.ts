// Regression (issue 14, defect 4) on the real broker: a client-chosen id "__proto__" is a key of the orders example's
// stock state (its reservations per order). A declined order "__proto__" must give its stock back (it kept 2 of 10:
// msgpackr renamed the key to "__proto_" in the store, and the release found nothing), and the key must survive the
// changelog: a second instance with an empty state folder restores it and releases what was reserved under it.
import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { App } from '../../src/app/app.ts';
import type { CommandEnvelope, EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { decodeValue } from '../../src/state/value-codec.ts';
import { loadTopology, type LoadedTopology } from '../../src/topology/load.ts';
import { changelogTopic, internalTopics } from '../../src/topology/names.ts';
import { untilRunning } from '../helpers/app-ready.ts';
import { ROOT } from '../helpers/cli.ts';
import { BROKERS, deleteTopics, kafka, readAll, unique, type ReadRecord } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { readUntil } from '../helpers/users-app.ts';

const PARTITIONS = 2;
let dir: string;
let loaded: LoadedTopology;
const topic = (alias: string) => loaded.topology.topics[alias]!.name;
const json = <T>(r: ReadRecord) => JSON.parse(String(r.value)) as T;

interface Stock {
  version: number;
  state: { available: number; reserved: Record<string, number> };
}

/** The stock of sku-x as the inventory's changelog has it, decoded as the runtime decodes a restore. */
async function stockInChangelog(): Promise<Stock | undefined> {
  let out: Stock | undefined;
  const records = (await readAll([changelogTopic(loaded.topology.app, 'inventory', 'state')])).sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  for (const r of records) if (r.key === 'sku-x' && r.value) out = decodeValue<Stock>(r.value);
  return out;
}

test.before(() => {
  const app = unique('proto-keys');
  dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const doc = parse(readFileSync(join(ROOT, 'examples/orders/topology.yaml'), 'utf8')) as { app: string; kafka: { brokers: string }; processing: unknown; topics: Record<string, { name: string; partitions: number }> };
  doc.app = app;
  doc.kafka.brokers = BROKERS.join(',');
  doc.processing = { commitIntervalMs: 100, sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 };
  for (const t of Object.values(doc.topics)) {
    t.name = `${app}-${t.name}`;
    t.partitions = PARTITIONS;
  }
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

async function send(alias: string, c: CommandEnvelope): Promise<void> {
  const producer = kafka('proto-client').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic: topic(alias), acks: -1, messages: [{ key: c.aggregateId, value: JSON.stringify(c) }] });
  } finally {
    await producer.disconnect();
  }
}

const replyTo = async (commandId: string) =>
  json<Reply>((await readUntil([topic('replies')], (rs) => rs.some((r) => json<Reply>(r).commandId === commandId), `the reply to ${commandId}`, 120_000)).find((r) => json<Reply>(r).commandId === commandId)!);

async function withApp(name: string, fn: () => Promise<void>): Promise<void> {
  const stateDir = join(dir, name);
  mkdirSync(stateDir, { recursive: true });
  const app = new App(loaded, { log: memoryLogger(), stateDir, httpPort: 0 });
  await app.start();
  try {
    await untilRunning(app, PARTITIONS);
    await fn();
  } finally {
    await app.stop();
  }
}

test.serial('a declined order "__proto__" gives its reserved stock back, and a reservation under "__proto__" is kept as that key', async (t) => {
  await withApp('a', async () => {
    await send('inventory-commands', { commandId: 'stock-x', commandType: 'AddStock', aggregateId: 'sku-x', data: { quantity: 10 } });
    await replyTo('stock-x');
    await send('order-commands', { commandId: 'place-proto', commandType: 'PlaceOrder', aggregateId: '__proto__', data: { customerId: 'c', sku: 'sku-x', quantity: 2, amount: 5000 } });
    const log = await readUntil([topic('saga-log')], (rs) => rs.some((r) => r.key === '__proto__' && json<EventEnvelope>(r).eventType === 'SagaCompensated'), 'the saga of "__proto__" to end', 120_000);
    t.deepEqual(
      log.filter((r) => r.key === '__proto__').map((r) => json<EventEnvelope>(r).eventType),
      ['SagaStarted', 'SagaStepCompleted', 'SagaFailed', 'SagaCompensated'],
    );
    const released = (await readAll([topic('inventory-events')])).map((r) => json<EventEnvelope>(r)).filter((e) => e.eventType === 'StockReleased');
    t.deepEqual(released.map((e) => e.data), [{ orderId: '__proto__', quantity: 2 }]);
    t.deepEqual(await stockInChangelog(), { version: 3, state: { available: 10, reserved: {} } });

    await send('inventory-commands', { commandId: 'reserve-proto', commandType: 'ReserveStock', aggregateId: 'sku-x', data: { orderId: '__proto__', quantity: 3 } });
    t.like(await replyTo('reserve-proto'), { status: 'accepted', aggregateVersion: 4 });
    const stock = await stockInChangelog();
    t.is(JSON.stringify(stock?.state), '{"available":7,"reserved":{"__proto__":3}}');
  });
});

test.serial('a new instance with an empty state folder restores the "__proto__" reservation from the changelog and releases it', async (t) => {
  await withApp('b', async () => {
    await send('inventory-commands', { commandId: 'release-proto', commandType: 'ReleaseStock', aggregateId: 'sku-x', data: { orderId: '__proto__' } });
    t.like(await replyTo('release-proto'), { status: 'accepted', aggregateVersion: 5 });
    const released = (await readAll([topic('inventory-events')])).map((r) => json<EventEnvelope>(r)).filter((e) => e.eventType === 'StockReleased');
    t.deepEqual(released.at(-1)?.data, { orderId: '__proto__', quantity: 3 });
    t.deepEqual(await stockInChangelog(), { version: 5, state: { available: 10, reserved: {} } });
  });
});
