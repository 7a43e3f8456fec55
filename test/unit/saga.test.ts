// Sagas with no broker: the orders example (a declarative flow over three declarative aggregates, correlated by
// order id through a repartition topic) and a saga module, run end to end by the TopologyTestDriver — which runs the
// same processors, stages, punctuations and dead-letter routing as `foldstream run`.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FoldstreamError } from '../../src/errors.ts';
import type { StoredSaga } from '../../src/processors/saga/processor.ts';
import type { CommandEnvelope, EventEnvelope } from '../../src/serde/envelope.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { FIXTURES, ROOT } from '../helpers/cli.ts';

const ORDERS = join(ROOT, 'examples/orders/topology.yaml');
const SAGA = 'order-fulfilment';
const INSTANCES = 'order-fulfilment-instances';

type Driver = TopologyTestDriver;
const log = (d: Driver) => d.output<EventEnvelope>('saga-log').map((r) => [r.key, r.value.eventType]);
const commandsOn = (d: Driver, topic: string) => d.output<CommandEnvelope>(topic).map((r) => r.value);

async function addStock(d: Driver, sku: string, quantity: number) {
  return d.pipeCommand({ commandType: 'AddStock', aggregateId: sku, data: { quantity } }, { topic: 'inventory-commands' });
}
async function placeOrder(d: Driver, id: string, data: { sku: string; quantity: number; amount: number }) {
  return d.pipeCommand({ commandId: `place-${id}`, commandType: 'PlaceOrder', aggregateId: id, userId: 'ann', data: { customerId: 'c1', ...data } }, { topic: 'order-commands' });
}
const orderStatus = async (d: Driver, id: string) => ((await d.store<{ state: { status: string } }>('orders', 'state')).get(id))?.state.status;
const available = async (d: Driver, sku: string) => ((await d.store<{ state: { available: number } }>('inventory', 'state')).get(sku))?.state.available;
const saga = async (d: Driver, id: string) => (await d.store<StoredSaga>(INSTANCES, 'sagas')).get(id);

test('orders: a placed order runs reserve-stock, charge-payment and confirm-order, each step on the answer to the one before', async (t) => {
  const d = await TopologyTestDriver.fromFile(ORDERS);
  await addStock(d, 'sku-1', 5);
  const mark = d.mark();
  t.like(await placeOrder(d, 'o1', { sku: 'sku-1', quantity: 2, amount: 100 }), { status: 'accepted' });

  t.deepEqual(log(d), [
    ['o1', 'SagaStarted'],
    ['o1', 'SagaStepCompleted'],
    ['o1', 'SagaStepCompleted'],
    ['o1', 'SagaStepCompleted'],
    ['o1', 'SagaCompleted'],
  ]);
  t.deepEqual(
    d.output<EventEnvelope>('saga-log').map((r) => [r.value.aggregateVersion, r.value.data.step ?? null, r.value.aggregateType]),
    [
      [1, null, SAGA],
      [2, 'reserve-stock', SAGA],
      [3, 'charge-payment', SAGA],
      [4, 'confirm-order', SAGA],
      [5, null, SAGA],
    ],
  );
  // each command went to its aggregate's topic, keyed by the aggregate id, and got an accepted reply
  const reserve = commandsOn(d, 'inventory-commands').filter((c) => c.commandType === 'ReserveStock');
  t.deepEqual(reserve.map((c) => [c.aggregateId, c.data]), [['sku-1', { orderId: 'o1', quantity: 2 }]]);
  t.deepEqual(d.output('inventory-commands').filter((r) => (r.value as CommandEnvelope).commandType === 'ReserveStock').map((r) => r.key), ['sku-1']);
  t.deepEqual(commandsOn(d, 'payment-commands').map((c) => [c.commandType, c.aggregateId, c.data]), [['ChargePayment', 'o1', { amount: 100 }]]);
  const confirm = commandsOn(d, 'order-commands').filter((c) => c.commandType === 'ConfirmOrder');
  t.is(confirm.length, 1);
  for (const c of [...reserve, ...confirm]) t.like(d.reply(c.commandId), { status: 'accepted' });

  // correlation: every command carries the correlationId of the order's first event (the PlaceOrder's commandId,
  // as the aggregate set it), its causation is the event it answers, and the user who placed the order
  const placed = d.output<EventEnvelope>('order-events', { since: mark }).find((r) => r.value.eventType === 'OrderPlaced')!.value;
  const reserved = d.output<EventEnvelope>('inventory-events').find((r) => r.value.eventType === 'StockReserved')!.value;
  t.is(placed.correlationId, 'place-o1');
  t.like(reserve[0], { correlationId: 'place-o1', userId: 'ann' });
  t.is((reserve[0] as unknown as { causationId: string }).causationId, placed.eventId);
  t.is((commandsOn(d, 'payment-commands')[0] as unknown as { causationId: string }).causationId, reserved.eventId);
  // and so the aggregates' events in answer carry it on
  t.is(reserved.correlationId, 'place-o1');

  t.is(await orderStatus(d, 'o1'), 'CONFIRMED');
  t.is(await available(d, 'sku-1'), 3);
  t.like(await saga(d, 'o1'), { status: 'completed', logVersion: 5, deadline: null, correlationId: 'place-o1' });
  t.deepEqual([...(await d.store(INSTANCES, 'deadlines')).keys()], [], 'no deadline is left behind');
  t.is(d.metric(INSTANCES, 'saga_lifecycle', { event: 'completed' }), 1);
  t.is(d.metric(INSTANCES, 'saga_commands'), 3);
  t.is(d.metric(INSTANCES, 'saga_events', { outcome: 'started' }), 1);
  // StockAdded carries no orderId: it concerns no saga, and never reaches the instances stage
  t.is(d.metric(SAGA, 'saga_events', { outcome: 'uncorrelated' }), 1);
  t.false(d.output('order-service-order-fulfilment-repartition').some((r) => (r.value as EventEnvelope).eventType === 'StockAdded'));
});

test('orders: a declined payment compensates the reserved stock and cancels the order; short stock fails with nothing to undo', async (t) => {
  const d = await TopologyTestDriver.fromFile(ORDERS);
  await addStock(d, 'sku-1', 5);
  await placeOrder(d, 'o2', { sku: 'sku-1', quantity: 2, amount: 5000 });
  t.deepEqual(log(d), [
    ['o2', 'SagaStarted'],
    ['o2', 'SagaStepCompleted'],
    ['o2', 'SagaFailed'],
    ['o2', 'SagaCompensated'],
  ]);
  const failed = d.output<EventEnvelope>('saga-log').find((r) => r.value.eventType === 'SagaFailed')!.value;
  t.deepEqual(failed.data, { status: 'compensated', reason: 'PaymentDeclined at step "charge-payment"', compensating: true });
  // the failed step itself is not compensated (it did not happen): only the reservation is released, no refund
  t.deepEqual(
    [...commandsOn(d, 'inventory-commands'), ...commandsOn(d, 'payment-commands'), ...commandsOn(d, 'order-commands')]
      .map((c) => c.commandType)
      .filter((type) => type !== 'AddStock' && type !== 'PlaceOrder'),
    ['ReserveStock', 'ReleaseStock', 'ChargePayment', 'CancelOrder'],
  );
  t.is(await available(d, 'sku-1'), 5);
  t.is(await orderStatus(d, 'o2'), 'CANCELLED');
  t.like((await d.store<{ state: { reason: string } }>('orders', 'state')).get('o2')!.state, { reason: 'PaymentDeclined at step "charge-payment"' });

  d.readOutput('saga-log');
  await placeOrder(d, 'o3', { sku: 'sku-1', quantity: 9, amount: 5 });
  t.deepEqual(log(d), [
    ['o3', 'SagaStarted'],
    ['o3', 'SagaFailed'],
  ]);
  t.like(await saga(d, 'o3'), { status: 'failed' });
  t.false(commandsOn(d, 'inventory-commands').some((c) => c.commandType === 'ReleaseStock' && c.data.orderId === 'o3'));
  t.is(await orderStatus(d, 'o3'), 'CANCELLED');
  t.is(await available(d, 'sku-1'), 5);
});

/** The orders example without the payments aggregate: a ChargePayment is never answered. */
async function withoutPayments(clock?: 'stream-time'): Promise<Driver> {
  let yaml = readFileSync(ORDERS, 'utf8');
  const from = yaml.indexOf('  # one payment per order');
  const to = yaml.indexOf('  # The process manager');
  yaml = yaml.slice(0, from) + yaml.slice(to);
  if (clock) yaml = yaml.replace('    startOn: OrderPlaced', `    startOn: OrderPlaced\n    deadlines: { clock: ${clock}, checkIntervalMs: 1000 }`);
  return TopologyTestDriver.fromYaml(yaml, join(ROOT, 'examples/orders'));
}

test('orders: a step that times out (wall clock) is compensated itself, then the steps before it; a late answer finds the saga ended', async (t) => {
  const d = await withoutPayments();
  await addStock(d, 'sku-1', 5);
  await placeOrder(d, 'o1', { sku: 'sku-1', quantity: 2, amount: 100 });
  t.like(await saga(d, 'o1'), { status: 'running', deadline: { name: 'charge-payment', at: d.now + 30_000 } });
  t.is((await d.store(INSTANCES, 'deadlines')).size, 1);

  await d.advanceWallClock(29_000);
  t.like(await saga(d, 'o1'), { status: 'running' }, 'not due yet');
  await d.advanceWallClock(2_000);
  t.deepEqual(log(d).map(([, type]) => type), ['SagaStarted', 'SagaStepCompleted', 'SagaTimedOut', 'SagaFailed', 'SagaCompensated']);
  const entries = d.output<EventEnvelope>('saga-log').map((r) => r.value);
  t.deepEqual(entries[2]!.data, { status: 'compensated', deadline: 'charge-payment', at: new Date(d.now - 31_000 + 30_000).toISOString() });
  t.is(entries[3]!.data.reason, 'step "charge-payment" timed out');
  // the timed-out step may have happened without its answer: it is compensated too, last step first
  const sent = [...commandsOn(d, 'payment-commands'), ...commandsOn(d, 'inventory-commands'), ...commandsOn(d, 'order-commands')].filter(
    (c) => (c as unknown as { causationId?: string }).causationId === entries[2]!.eventId,
  );
  t.deepEqual(sent.map((c) => c.commandType).sort(), ['CancelOrder', 'RefundPayment', 'ReleaseStock']);
  t.is(await available(d, 'sku-1'), 5);
  t.deepEqual((await d.store<{ state: unknown }>('inventory', 'state')).get('sku-1')!.state, { available: 5, reserved: {} });
  // releasing again (or releasing what an order never reserved) gives nothing back: the compensation is harmless
  t.like(await d.pipeCommand({ commandType: 'ReleaseStock', aggregateId: 'sku-1', data: { orderId: 'o1', quantity: 2 } }, { topic: 'inventory-commands' }), { status: 'accepted', eventIds: [] });
  t.is(await available(d, 'sku-1'), 5);
  t.is(await orderStatus(d, 'o1'), 'CANCELLED');
  t.like(await saga(d, 'o1'), { status: 'compensated', deadline: null });
  t.is((await d.store(INSTANCES, 'deadlines')).size, 0);

  // the payment answers after all: the saga has ended and does nothing more
  const before = d.output('saga-log').length;
  // (the answers to its compensations, StockReleased and OrderCancelled, found it ended too)
  const ended = d.metric(INSTANCES, 'saga_events', { outcome: 'ended' });
  t.is(ended, 2);
  await d.pipeEvent({ eventType: 'PaymentCharged', aggregateType: 'Payment', aggregateId: 'o1', aggregateVersion: 1, data: { orderId: 'o1', amount: 100 } }, { topic: 'payment-events' });
  t.is(d.output('saga-log').length, before);
  t.is(d.metric(INSTANCES, 'saga_events', { outcome: 'ended' }), ended + 1);
});

test('orders: with the stream-time clock a deadline fires when record time passes it, not the wall clock', async (t) => {
  const d = await withoutPayments('stream-time');
  await addStock(d, 'sku-1', 5);
  await placeOrder(d, 'o1', { sku: 'sku-1', quantity: 2, amount: 100 });
  await d.advanceWallClock(600_000);
  t.like(await saga(d, 'o1'), { status: 'running' }, 'wall-clock time does not fire stream-time deadlines');
  await d.advanceStreamTime(d.now - 600_000 + 31_000, INSTANCES);
  t.like(await saga(d, 'o1'), { status: 'compensated' });
  t.true(log(d).some(([, type]) => type === 'SagaTimedOut'));
});

test('orders: the same input gives the same commandIds and log eventIds (a re-run after an abort sends the same)', async (t) => {
  const run = async () => {
    const d = await TopologyTestDriver.fromFile(ORDERS);
    await addStock(d, 'sku-1', 5);
    await placeOrder(d, 'o1', { sku: 'sku-1', quantity: 2, amount: 100 });
    await placeOrder(d, 'o2', { sku: 'sku-1', quantity: 2, amount: 5000 });
    return [...commandsOn(d, 'inventory-commands'), ...commandsOn(d, 'payment-commands'), ...commandsOn(d, 'order-commands')]
      .map((c) => c.commandId)
      .concat(d.output<EventEnvelope>('saga-log').map((r) => r.value.eventId));
  };
  const [a, b] = [await run(), await run()];
  t.deepEqual(a, b);
  t.is(new Set(a).size, a.length, 'and no two are the same');
});

const shipping = (clock: 'wall-clock' | 'stream-time' = 'wall-clock', endedRetentionMs = 0) => ({
  app: 'shop',
  kafka: { brokers: '127.0.0.1:9092' },
  topics: {
    events: { name: 'shop-events', partitions: 4 },
    commands: { name: 'shop-shipping-commands', partitions: 4 },
    refunds: { name: 'shop-refunds', partitions: 4 },
    log: { name: 'shop-saga-log', partitions: 4 },
  },
  processors: [
    {
      name: 'shipping',
      type: 'saga' as const,
      input: 'events',
      output: { commands: ['commands', 'refunds'], log: 'log' },
      module: './modules/shipping-saga.ts',
      deadlines: { clock, checkIntervalMs: 1000 },
      endedRetentionMs,
    },
  ],
});

const paid = (id: string, version = 1) => ({ eventType: 'OrderPaid', aggregateType: 'Order', aggregateId: id, aggregateVersion: version, data: { address: 'Main St 1' } });

test('a saga module: handle starts an instance, a repeated event is skipped by version, onDeadline retries then fails', async (t) => {
  const d = await TopologyTestDriver.fromObject(shipping(), FIXTURES);
  await d.pipeEvent(paid('o1'), { topic: 'events' });
  t.deepEqual(commandsOn(d, 'commands').map((c) => [c.commandType, c.aggregateId, c.data]), [['ShipOrder', 'o1', { address: 'Main St 1' }]]);
  // the same event again (an upstream producer retried): at or below the version handled from that aggregate
  await d.pipeEvent(paid('o1'), { topic: 'events' });
  t.is(commandsOn(d, 'commands').length, 1);
  t.is(d.metric('shipping', 'saga_events', { outcome: 'already_applied' }), 1);
  // an event the saga has no reaction to changes nothing but the version it has seen
  await d.pipeEvent({ eventType: 'OrderNoted', aggregateType: 'Order', aggregateId: 'o1', aggregateVersion: 2, data: {} }, { topic: 'events' });
  t.is(d.metric('shipping', 'saga_events', { outcome: 'ignored' }), 1);
  t.like(await d.store<StoredSaga>('shipping', 'sagas').then((s) => s.get('o1')), { seen: { 'Order/o1': 2 }, status: 'running' });

  await d.advanceWallClock(61_000);
  t.deepEqual(commandsOn(d, 'commands').map((c) => c.data), [{ address: 'Main St 1' }, { address: 'Main St 1', retry: true }]);
  t.like(await d.store<StoredSaga>('shipping', 'sagas').then((s) => s.get('o1')), { status: 'running', state: { attempts: 2 } });
  await d.advanceWallClock(61_000);
  t.deepEqual(commandsOn(d, 'refunds').map((c) => [c.commandType, c.aggregateId]), [['RefundOrder', 'o1']]);
  t.deepEqual(
    d.output<EventEnvelope>('log').map((r) => [r.value.eventType, r.value.data.reason ?? null]),
    [
      ['SagaStarted', null],
      ['SagaTimedOut', null],
      ['SagaTimedOut', null],
      ['SagaFailed', 'not shipped after 2 attempts'],
    ],
  );
  t.like(await d.store<StoredSaga>('shipping', 'sagas').then((s) => s.get('o1')), { status: 'failed', deadline: null });
});

test('a saga module: completing clears the deadline, so it never fires', async (t) => {
  const d = await TopologyTestDriver.fromObject(shipping(), FIXTURES);
  await d.pipeEvent(paid('o1'), { topic: 'events' });
  await d.pipeEvent({ eventType: 'OrderShipped', aggregateType: 'Order', aggregateId: 'o1', aggregateVersion: 2, data: {} }, { topic: 'events' });
  await d.advanceWallClock(200_000);
  t.deepEqual(d.output<EventEnvelope>('log').map((r) => r.value.eventType), ['SagaStarted', 'SagaStepCompleted', 'SagaCompleted']);
  t.is(commandsOn(d, 'commands').length, 1);
  t.is((await d.store('shipping', 'deadlines')).size, 0);
});

test('a saga whose code returns something that is not a reaction dead-letters the event and goes on', async (t) => {
  const d = await TopologyTestDriver.fromObject(shipping(), FIXTURES);
  await d.pipeEvent({ eventType: 'Weird', aggregateType: 'Order', aggregateId: 'o9', data: {} }, { topic: 'events' });
  await d.pipeEvent(paid('o1'), { topic: 'events' });
  const dead = d.deadLetters('shipping');
  t.is(dead.length, 1);
  t.is(dead[0]!.code, 'HANDLER_FAILED');
  t.regex(dead[0]!.message, /handle\(\): returned command Oops with aggregateId nothing/);
  t.false(d.output('commands').some((r) => (r.value as CommandEnvelope).commandType === 'Oops'), 'no half-made command was sent');
  t.is(commandsOn(d, 'commands').length, 1, 'the next event was processed');
  t.is((await d.store('shipping', 'sagas')).has('o9'), false);
});

test('a saga module: an onDeadline that throws ends its own instance (SagaFailed) and the other deadlines still fire', async (t) => {
  const d = await TopologyTestDriver.fromObject(shipping(), FIXTURES);
  await d.pipeEvent({ ...paid('o1'), data: { address: 'nowhere' } }, { topic: 'events' });
  await d.pipeEvent(paid('o2'), { topic: 'events' });
  await d.advanceWallClock(61_000);
  const sagas = await d.store<StoredSaga>('shipping', 'sagas');
  t.like(sagas.get('o1'), { status: 'failed', deadline: null });
  t.like(sagas.get('o2'), { status: 'running', state: { attempts: 2 } });
  t.deepEqual(
    d.output<EventEnvelope>('log').filter((r) => r.key === 'o1').map((r) => [r.value.eventType, r.value.data.reason ?? null]),
    [
      ['SagaStarted', null],
      ['SagaTimedOut', null],
      ['SagaFailed', 'onDeadline failed: no carrier goes nowhere'],
    ],
  );
});

test('a saga module: an onDeadline reaction that sends to an undeclared topic ends its own instance, sends nothing, and the other deadlines fire', async (t) => {
  const d = await TopologyTestDriver.fromObject(shipping(), FIXTURES);
  await d.pipeEvent({ ...paid('o1'), data: { address: 'abroad' } }, { topic: 'events' });
  await d.pipeEvent(paid('o2'), { topic: 'events' });
  await d.advanceWallClock(61_000);
  const sagas = await d.store<StoredSaga>('shipping', 'sagas');
  t.like(sagas.get('o1'), { status: 'failed', deadline: null });
  t.like(sagas.get('o2'), { status: 'running', state: { attempts: 2 } });
  const failed = d.output<EventEnvelope>('log').find((r) => r.key === 'o1' && r.value.eventType === 'SagaFailed')!;
  t.regex(String(failed.value.data.reason), /^onDeadline failed: saga "shipping" sent ShipAbroad to "customs", which is not one of its output\.commands/);
  t.false(d.output('commands').some((r) => (r.value as CommandEnvelope).commandType === 'ShipAbroad'));
});

test('wall-clock deadlines count from when they are set, not from the (older) time of the record that set them', async (t) => {
  const d = await TopologyTestDriver.fromObject(shipping(), FIXTURES);
  // an event written 50 s ago (a backlog, or the time carried along a chain of commands and events)
  await d.pipeEvent(paid('o1'), { topic: 'events', timestamp: d.now - 50_000 });
  t.like(await d.store<StoredSaga>('shipping', 'sagas').then((s) => s.get('o1')), { deadline: { at: d.now + 60_000 } });
  await d.advanceWallClock(30_000);
  t.is(commandsOn(d, 'commands').length, 1, 'not due 10 s after the record time + 60 s');
  // with the stream-time clock the same event's deadline counts from its record time
  const s = await TopologyTestDriver.fromObject(shipping('stream-time'), FIXTURES);
  await s.pipeEvent(paid('o1'), { topic: 'events', timestamp: s.now - 50_000 });
  t.like(await s.store<StoredSaga>('shipping', 'sagas').then((x) => x.get('o1')), { deadline: { at: s.now - 50_000 + 60_000 } });
});

test('endedRetentionMs: an ended instance is kept for that long in stream time (late events find it ended), then deleted', async (t) => {
  const d = await TopologyTestDriver.fromObject(shipping('wall-clock', 3_600_000), FIXTURES);
  const t0 = d.now;
  await d.pipeEvent(paid('o1'), { topic: 'events' });
  await d.pipeEvent({ eventType: 'OrderShipped', aggregateType: 'Order', aggregateId: 'o1', aggregateVersion: 2, data: {} }, { topic: 'events' });
  t.deepEqual([...(await d.store('shipping', 'ended')).values()], ['o1']);
  // half an hour later a late event finds it ended
  await d.pipeEvent({ eventType: 'OrderNoted', aggregateType: 'Order', aggregateId: 'o1', aggregateVersion: 3, data: {} }, { topic: 'events', timestamp: t0 + 1_800_000 });
  t.is(d.metric('shipping', 'saga_events', { outcome: 'ended' }), 1);
  t.true((await d.store('shipping', 'sagas')).has('o1'));
  // an hour and more of stream time (of o1's task: a record of its partition) and of the wall clock after it ended:
  // deleted, index too (stream time counts at most processing.maxClockSkewMs ahead of the wall clock)
  await d.advanceWallClock(4_000_000);
  await d.pipeEvent({ eventType: 'OrderNoted', aggregateType: 'Order', aggregateId: 'o2', aggregateVersion: 1, data: {} }, { topic: 'events', timestamp: t0 + 4_000_000, partition: partitionForKey('o1', 4) });
  t.false((await d.store('shipping', 'sagas')).has('o1'));
  t.is((await d.store('shipping', 'ended')).size, 0);
  t.is(d.metric('shipping', 'saga_events', { outcome: 'expired' }), 1);
  // without endedRetentionMs there is no index, and instances stay
  const keep = await TopologyTestDriver.fromObject(shipping(), FIXTURES);
  await keep.pipeEvent(paid('o1'), { topic: 'events' });
  await keep.pipeEvent({ eventType: 'OrderShipped', aggregateType: 'Order', aggregateId: 'o1', aggregateVersion: 2, data: {} }, { topic: 'events' });
  await keep.advanceStreamTime(t0 + 100_000_000);
  t.true((await keep.store('shipping', 'sagas')).has('o1'));
  await t.throwsAsync(() => keep.store('shipping', 'ended'));
});

// issue 14, defect 1: deadlines and ended-instance retention ran on stream time alone, so one record dated years ahead
// fired every deadline of its partition (compensating every instance) and deleted every ended instance
test('a record dated years ahead of the wall clock fires no stream-time deadline early and expires no ended instance', async (t) => {
  const d = await TopologyTestDriver.fromObject({ ...shipping('stream-time', 3_600_000), processing: { maxClockSkewMs: 10_000 } }, FIXTURES);
  const t0 = d.now;
  const sameTask = { topic: 'events', partition: partitionForKey('o1', 4) };
  await d.pipeEvent(paid('o1'), { ...sameTask, timestamp: t0 });
  await d.pipeEvent(paid('o2'), { ...sameTask, key: 'o2', timestamp: t0 });
  await d.pipeEvent({ eventType: 'OrderShipped', aggregateType: 'Order', aggregateId: 'o2', aggregateVersion: 2, data: {} }, { ...sameTask, key: 'o2', timestamp: t0 });
  t.like((await d.store<StoredSaga>('shipping', 'sagas')).get('o2'), { status: 'completed' });
  // a producer whose clock is four years ahead
  await d.pipeEvent({ eventType: 'OrderNoted', aggregateType: 'Order', aggregateId: 'o3', aggregateVersion: 1, data: {} }, { ...sameTask, key: 'o3', timestamp: t0 + 4 * 365 * 86_400_000 });
  t.is(commandsOn(d, 'commands').length, 2, 'no deadline fired: only the two first ShipOrder commands');
  t.like((await d.store<StoredSaga>('shipping', 'sagas')).get('o1'), { status: 'running', state: { attempts: 1 } });
  t.true((await d.store('shipping', 'sagas')).has('o2'), 'the ended instance is kept');
  t.is(d.metric('shipping', 'saga_lifecycle', { event: 'timed_out' }), 0);
  // stream time is held at most processing.maxClockSkewMs (10 s here) ahead of the wall clock; no record moves it
  // while it is ahead, so the wall clock fires what is due by the held time
  await d.advanceWallClock(40_000);
  t.is(d.metric('shipping', 'saga_lifecycle', { event: 'timed_out' }), 0, 'due at t0 + 60 s, not yet at t0 + 40 s + 10 s');
  await d.advanceWallClock(10_000);
  t.is(d.metric('shipping', 'saga_lifecycle', { event: 'timed_out' }), 1, 'due at t0 + 60 s = t0 + 50 s + 10 s');
  t.like((await d.store<StoredSaga>('shipping', 'sagas')).get('o1'), { status: 'running', state: { attempts: 2 } });
  t.true((await d.store('shipping', 'sagas')).has('o2'));
  await d.advanceWallClock(3_600_000);
  t.false((await d.store('shipping', 'sagas')).has('o2'), 'an hour after it ended by both clocks, it goes');
});

test('a saga module that waits for its compensation: compensating (SagaFailed) until the refund is confirmed, then compensated', async (t) => {
  const d = await TopologyTestDriver.fromObject(
    {
      app: 'bank',
      kafka: { brokers: '127.0.0.1:9092' },
      topics: { events: { name: 'bank-events', partitions: 4 }, commands: { name: 'bank-commands', partitions: 4 }, log: { name: 'bank-saga-log', partitions: 4 } },
      processors: [{ name: 'transfers', type: 'saga' as const, input: 'events', correlate: 'data.transfer', output: { commands: 'commands', log: 'log' }, module: './modules/transfer-saga.ts' }],
    },
    FIXTURES,
  );
  const event = (eventType: string, aggregateId: string, aggregateVersion: number, data: Record<string, unknown>) =>
    d.pipeEvent({ eventType, aggregateType: 'Account', aggregateId, aggregateVersion, data: { transfer: 'tr-1', ...data } }, { topic: 'events' });
  await event('TransferRequested', 'acc-a', 1, { from: 'acc-a', to: 'acc-b', amount: 30 });
  await event('Debited', 'acc-a', 2, { amount: 30 });
  await event('CreditRefused', 'acc-b', 1, {});
  t.like((await d.store<StoredSaga>('transfers-instances', 'sagas')).get('tr-1'), { status: 'compensating' });
  await event('Refunded', 'acc-a', 3, {});
  t.like((await d.store<StoredSaga>('transfers-instances', 'sagas')).get('tr-1'), { status: 'compensated' });
  t.deepEqual(
    d.output<EventEnvelope>('log').map((r) => [r.value.eventType, r.value.data.status, r.value.data.reason ?? null]),
    [
      ['SagaStarted', 'running', null],
      ['SagaStepCompleted', 'running', null],
      ['SagaFailed', 'compensating', 'credit refused'],
      ['SagaCompensated', 'compensated', null],
    ],
  );
  t.deepEqual(commandsOn(d, 'commands').map((c) => [c.commandType, c.aggregateId]), [['Debit', 'acc-a'], ['Credit', 'acc-b'], ['Refund', 'acc-a']]);
});

test('a saga or decider module without initialState is refused at build, saying what to export', async (t) => {
  const saga = { ...shipping(), processors: [{ ...shipping().processors[0]!, module: './modules/no-initial-state.ts' }] };
  const e1 = await t.throwsAsync(() => TopologyTestDriver.fromObject(saga, FIXTURES));
  t.regex(e1!.message, /processor "shipping": module "\.\/modules\/no-initial-state\.ts" has no export initialState/);
  t.regex((e1 as FoldstreamError).hint ?? '', /the state of a saga instance that has just started/);
  const decider = {
    ...shipping(),
    processors: [{ name: 'orders', type: 'aggregate' as const, aggregateType: 'Order', input: 'commands', output: { events: 'events' }, module: './modules/no-initial-state.ts' }],
  };
  const e2 = await t.throwsAsync(() => TopologyTestDriver.fromObject(decider, FIXTURES));
  t.regex(e2!.message, /processor "orders": module "\.\/modules\/no-initial-state\.ts" has no export initialState/);
  t.regex((e2 as FoldstreamError).hint ?? '', /the state of an aggregate with no events/);
});
