/**
 * Drives the orders example (examples/orders/topology.yaml, docs/sagas.md): adds stock, places three orders and
 * prints, per order, the saga log and the order's final state, so you can watch the saga coordinate three aggregates:
 *
 *   npx foldstream run examples/orders/topology.yaml     # one terminal: the app (npm run kafka:start for a broker)
 *   npm run example:orders                               # another: the commands
 *   (that is `npx tsx examples/orders/send-commands.ts [topology.yaml]`)
 *
 * The first order goes through (stock reserved, payment charged, order confirmed); the second is declined by the
 * payment (amount over 1000), so its stock reservation is released and the order cancelled; the third asks for more
 * than the stock holds, so the order is cancelled with nothing to undo. Each run uses fresh ids.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import type { CommandEnvelope, EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { loadTopology } from '../../src/topology/load.ts';

const { Kafka, logLevel } = kafkajs;

const file = process.argv[2] ?? fileURLToPath(new URL('./topology.yaml', import.meta.url));
const t = loadTopology(file).topology;
const topic = (alias: string) => {
  const d = t.topics[alias];
  if (!d) throw new Error(`${file} declares no topic "${alias}"`);
  return d.name;
};
const brokers = Array.isArray(t.kafka.brokers) ? t.kafka.brokers : t.kafka.brokers.split(',').map((b) => b.trim());
const kafka = new Kafka({ brokers, clientId: 'send-order-commands', logLevel: logLevel.NOTHING });

const replies = new Map<string, Reply>();
/** every event of the run's aggregates, and every saga log entry, in the order read */
const events: EventEnvelope[] = [];
const sagaLog: EventEnvelope[] = [];
let notify = () => {};

const run = randomBytes(3).toString('hex');
const sku = `sku-${run}`;
const orders = { ok: `order-${run}-1`, declined: `order-${run}-2`, short: `order-${run}-3` };
const ours = new Set<string>([sku, ...Object.values(orders)]);

const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
// read_committed: events, replies and saga log entries of aborted transactions never show
const consumer = kafka.consumer({ groupId: `send-order-commands-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 100 });
await producer.connect();
await consumer.connect();
for (const name of [topic('replies'), topic('order-events'), topic('inventory-events'), topic('payment-events'), topic('saga-log')]) await consumer.subscribe({ topic: name, fromBeginning: true });
await consumer.run({
  eachMessage: async ({ topic: from, message }) => {
    if (!message.value) return;
    const value = JSON.parse(message.value.toString()) as unknown;
    if (from === topic('replies')) replies.set((value as Reply).commandId, value as Reply);
    else if (from === topic('saga-log')) {
      if (ours.has((value as EventEnvelope).aggregateId)) sagaLog.push(value as EventEnvelope);
    }
    else if (ours.has((value as EventEnvelope).aggregateId)) events.push(value as EventEnvelope);
    notify();
  },
});

async function until<T>(what: string, get: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs / 1000} s: is the app running (npx foldstream run ${file})?`);
    await new Promise<void>((r) => {
      notify = r;
      setTimeout(r, 200);
    });
  }
}

async function send(to: string, commandType: string, aggregateId: string, data: Record<string, unknown>, note: string): Promise<Reply> {
  const command: CommandEnvelope = {
    commandId: randomUUID(),
    commandType,
    aggregateId,
    userId: 'send-order-commands',
    timestamp: new Date().toISOString(),
    data,
  };
  console.log(`→ ${commandType} ${aggregateId} ${JSON.stringify(data)}  (${note})`);
  await producer.send({ topic: topic(to), acks: -1, messages: [{ key: aggregateId, value: JSON.stringify(command) }] });
  const reply = await until(`reply to ${commandType}`, () => replies.get(command.commandId));
  console.log(`← ${reply.status}${reply.reason ? `: ${reply.reason}` : ''} — version ${reply.aggregateVersion}`);
  return reply;
}

/** The saga of an order has ended, and the order has the event that ends it (the saga's last command). */
function settled(orderId: string): EventEnvelope[] | undefined {
  const log = sagaLog.filter((e) => e.aggregateId === orderId);
  const last = log.at(-1);
  // the entry that ends an instance is the last of its reaction: SagaCompleted, SagaCompensated, or SagaFailed with status failed
  const ended = last && (last.eventType === 'SagaCompleted' || last.eventType === 'SagaCompensated' || (last.eventType === 'SagaFailed' && last.data.status === 'failed'));
  if (!ended) return undefined;
  const done = events.some((e) => e.aggregateType === 'Order' && e.aggregateId === orderId && ['OrderConfirmed', 'OrderCancelled'].includes(e.eventType));
  return done ? log : undefined;
}

try {
  console.log(`run ${run}: commands to ${topic('order-commands')} and ${topic('inventory-commands')}, saga log from ${topic('saga-log')}\n`);
  await send('inventory-commands', 'AddStock', sku, { quantity: 10 }, '10 in stock');
  await send('order-commands', 'PlaceOrder', orders.ok, { customerId: 'ann', sku, quantity: 2, amount: 250 }, 'goes through');
  await send('order-commands', 'PlaceOrder', orders.declined, { customerId: 'bob', sku, quantity: 1, amount: 1500 }, 'payment declined: over 1000');
  await send('order-commands', 'PlaceOrder', orders.short, { customerId: 'cy', sku, quantity: 50, amount: 20 }, 'more than the stock holds');

  for (const orderId of Object.values(orders)) {
    const log = await until(`end of the saga of ${orderId}`, () => settled(orderId));
    console.log(`\nsaga log of ${orderId}:`);
    for (const e of log) {
      const { status, ...rest } = e.data;
      const details = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
      console.log(`  v${e.aggregateVersion} ${e.eventType.padEnd(18)} status ${String(status).padEnd(12)}${details}`.trimEnd());
    }
  }

  // the last compensations (stock released, payments refused) may still be on their way; give them a moment
  await new Promise((r) => setTimeout(r, 1500));
  console.log('\nfinal order states (from the Order events):');
  for (const orderId of Object.values(orders)) {
    const mine = events.filter((e) => e.aggregateType === 'Order' && e.aggregateId === orderId);
    const last = mine.at(-1)!;
    const status = last.eventType === 'OrderConfirmed' ? 'CONFIRMED' : last.eventType === 'OrderCancelled' ? 'CANCELLED' : 'PLACED';
    console.log(`  ${orderId}  ${status}${last.data.reason ? ` (${String(last.data.reason)})` : ''}  — ${mine.map((e) => e.eventType).join(', ')}`);
  }
  const stock = events.filter((e) => e.aggregateType === 'Stock' && e.aggregateId === sku);
  const available = stock.reduce((n, e) => {
    const q = Number(e.data.quantity);
    return e.eventType === 'StockAdded' || e.eventType === 'StockReleased' ? n + q : e.eventType === 'StockReserved' ? n - q : n;
  }, 0);
  console.log(`\nstock of ${sku}: ${available} available — ${stock.map((e) => `${e.eventType}(${String(e.data.quantity)})`).join(', ')}`);
} finally {
  await consumer.disconnect();
  await producer.disconnect();
}
