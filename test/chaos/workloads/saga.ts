/**
 * The saga workload: the orders example (examples/orders/topology.yaml, docs/sagas.md) under the same faults — three
 * declarative aggregates and the `order-fulfilment` saga that coordinates them, with per-run topic names.
 *
 * - `orders` (PlaceOrder, ConfirmOrder, CancelOrder), `inventory` (stock per SKU: AddStock, ReserveStock, which
 *   emits StockReserved or StockUnavailable, ReleaseStock) and `payments` (ChargePayment: PaymentCharged up to 1000,
 *   PaymentDeclined above; RefundPayment) share one events topic and one replies topic.
 * - `order-fulfilment`, a saga with `correlate: data.orderId`: its first stage re-keys the events by order id through
 *   its repartition topic; its second runtime stage `order-fulfilment-instances` runs the instances (stores `sagas`
 *   and `deadlines`), sends commands to the three command topics and writes the saga log. The flow is the example's:
 *   reserve-stock → charge-payment → confirm-order; StockUnavailable fails it (nothing to compensate: SagaFailed),
 *   PaymentDeclined fails it after the reservation (ReleaseStock: SagaFailed, SagaCompensated); onFailure cancels the
 *   order.
 *
 * Differences from the example, on purpose:
 * - the payment of order X is the aggregate `pay-X`, not `X`: the orders and payments aggregates share the events
 *   topic, and foldstream derives an eventId from (events topic, aggregate key, version) only, so the example gives
 *   OrderPlaced of X and PaymentCharged of X the same eventId (docs/reliability.md, "saga workload"). With distinct
 *   keys the verifier can insist that no eventId names two events.
 * - the step timeouts are one hour: deadlines are record time + timeoutMs on the wall clock, and record time is when
 *   the generator wrote the PlaceOrder, so a timeout of seconds would fire whenever a run's backlog (or a kill) holds
 *   an order up that long, and which orders time out would depend on the faults. A timeout only fires if processing
 *   is stuck for an hour; the verifier accepts a timed-out saga if its log and commands are consistent with it.
 * - `maxEventVersion` on the saga, so a too-new event is dead-lettered by its first stage.
 * - PlaceOrder's BAD_QUANTITY rule reads `command.data.quantity`: the example's `$not(data.quantity > 0)` never
 *   rejects (a rule sees {command, state, version}; `data` is undefined there), so there an order of quantity 0 or
 *   -1 is placed and "reserved", and one of -1 adds stock.
 * - ChargePayment and RefundPayment carry data.orderId (the payment's aggregate id is no longer the order id).
 *
 * Input (the generator): AddStock to the inventory commands (SKUs: `keys`, at most 12, so reservations race),
 * PlaceOrder to the order commands — amounts above 1000 for some (declined), quantity 0 for some (rejected
 * BAD_QUANTITY: no saga), the same command again (same commandId: the first reply again, no second saga), and a new
 * PlaceOrder for an order that exists (ORDER_EXISTS). Bad records (corpus.ts) go to the two command topics (the
 * aggregates' dead-letter topics) and to the events topic (the saga's first stage's dead-letter topic; an event of an
 * unknown type there concerns no order and is ignored). Which orders get their stock is not predictable from the
 * input (sagas race for it): the verifier (verify/model-saga.ts) checks what holds for any interleaving.
 */
import { BAD_KIND_HEADER, envelopeSpoilable, json, spoil, type BadKind } from '../corpus.ts';
import type { Rng } from '../rng.ts';
import { processingYaml, topicYaml, type GenRecord, type TopologyParams, type Workload } from './workload.ts';

export const sagaTopics = (app: string) => ({
  orderCommands: `${app}-order-commands`,
  inventoryCommands: `${app}-inventory-commands`,
  paymentCommands: `${app}-payment-commands`,
  replies: `${app}-replies`,
  events: `${app}-events`,
  sagaLog: `${app}-saga-log`,
  /** internal: written by the saga's correlate stage, read by its instances stage */
  repartition: `${app}-order-fulfilment-repartition`,
});

/** at most this many SKUs, so that orders compete for stock */
export const MAX_SKUS = 12;
/** amounts above this are declined by the payments aggregate */
export const PAYMENT_LIMIT = 1000;
export const SAGA_TIMEOUT_MS = 3_600_000;
/** the generator's commandIds start with this; the saga's are UUIDs */
export const GENERATOR_COMMAND_PREFIX = 'g-';

const BASE_TIME = Date.UTC(2026, 10, 28);

export const sagaWorkload: Workload = {
  name: 'saga',
  inputTopics: (app) => [
    { alias: 'order-commands', name: sagaTopics(app).orderCommands, config: {} },
    { alias: 'inventory-commands', name: sagaTopics(app).inventoryCommands, config: {} },
    { alias: 'events', name: sagaTopics(app).events, config: { 'retention.ms': '-1' } },
  ],
  processors: (app) => {
    const t = sagaTopics(app);
    return [
      { processor: 'orders', inputs: [t.orderCommands] },
      { processor: 'inventory', inputs: [t.inventoryCommands] },
      { processor: 'payments', inputs: [t.paymentCommands] },
      { processor: 'order-fulfilment', inputs: [t.events] },
      { processor: 'order-fulfilment-instances', inputs: [t.repartition] },
    ];
  },
  // the saga's commands go back to the aggregates: the processors form a cycle (catch-up.ts reads every group's
  // offsets before any end, which is enough); a second clean pass is a margin
  settlePasses: 2,
  aimAt: (app) => [[sagaTopics(app).repartition], [sagaTopics(app).sagaLog], [sagaTopics(app).paymentCommands]],
  topologyYaml(p: TopologyParams): string {
    const t = sagaTopics(p.app);
    const versions = '{ OrderPlaced: 1, OrderConfirmed: 1, OrderCancelled: 1, StockAdded: 1, StockReserved: 1, StockUnavailable: 1, StockReleased: 1, PaymentCharged: 1, PaymentDeclined: 1, PaymentRefunded: 1 }';
    return `app: ${p.app}
kafka: { brokers: "${p.brokers.join(',')}", clientId: ${p.app} }
${processingYaml(p)}http: { port: 0, host: 127.0.0.1 }
topics:
${topicYaml('order-commands', t.orderCommands, p)}${topicYaml('inventory-commands', t.inventoryCommands, p)}${topicYaml('payment-commands', t.paymentCommands, p)}${topicYaml('replies', t.replies, p)}${topicYaml('events', t.events, p, { 'retention.ms': '-1' })}${topicYaml('saga-log', t.sagaLog, p, { 'retention.ms': '-1' })}processors:
  - name: orders
    type: aggregate
    aggregateType: Order
    input: order-commands
    output: { events: events, replies: replies }
    commands:
      PlaceOrder:
        reject:
          - { if: "version > 0", reason: "order exists already", code: ORDER_EXISTS }
          - { if: "$not(command.data.quantity > 0)", reason: "quantity must be positive", code: BAD_QUANTITY }
        emit:
          - type: OrderPlaced
            data: { orderId: command.aggregateId, customerId: command.data.customerId, sku: command.data.sku, quantity: command.data.quantity, amount: command.data.amount }
      ConfirmOrder:
        reject: [{ if: "state.status != 'PLACED'", reason: "only a placed order can be confirmed", code: NOT_PLACED }]
        emit: [{ type: OrderConfirmed, data: { orderId: command.aggregateId } }]
      CancelOrder:
        reject: [{ if: "state.status != 'PLACED'", reason: "only a placed order can be cancelled", code: NOT_PLACED }]
        emit: [{ type: OrderCancelled, data: { orderId: command.aggregateId, reason: command.data.reason } }]
    evolve:
      OrderPlaced: { status: "'PLACED'", sku: event.data.sku, quantity: event.data.quantity, amount: event.data.amount }
      OrderConfirmed: { status: "'CONFIRMED'" }
      OrderCancelled: { status: "'CANCELLED'", reason: event.data.reason }
  - name: inventory
    type: aggregate
    aggregateType: Stock
    input: inventory-commands
    output: { events: events, replies: replies }
    initialState: { available: 0 }
    commands:
      AddStock:
        emit: [{ type: StockAdded, data: { quantity: command.data.quantity } }]
      ReserveStock:
        emit:
          - { type: StockReserved, when: "state.available >= command.data.quantity", data: { orderId: command.data.orderId, quantity: command.data.quantity } }
          - { type: StockUnavailable, when: "state.available < command.data.quantity", data: { orderId: command.data.orderId, quantity: command.data.quantity, available: state.available } }
      ReleaseStock:
        emit: [{ type: StockReleased, data: { orderId: command.data.orderId, quantity: command.data.quantity } }]
    evolve:
      StockAdded: { available: "state.available + event.data.quantity" }
      StockReserved: { available: "state.available - event.data.quantity" }
      StockReleased: { available: "state.available + event.data.quantity" }
  - name: payments
    type: aggregate
    aggregateType: Payment
    input: payment-commands
    output: { events: events, replies: replies }
    commands:
      ChargePayment:
        emit:
          - { type: PaymentCharged, when: "command.data.amount <= ${PAYMENT_LIMIT}", data: { orderId: command.data.orderId, amount: command.data.amount } }
          - { type: PaymentDeclined, when: "command.data.amount > ${PAYMENT_LIMIT}", data: { orderId: command.data.orderId, amount: command.data.amount, reason: "'over the limit'" } }
      RefundPayment:
        reject: [{ if: "state.status != 'CHARGED'", reason: "nothing to refund", code: NOT_CHARGED }]
        emit: [{ type: PaymentRefunded, data: { orderId: command.data.orderId, amount: state.amount } }]
    evolve:
      PaymentCharged: { status: "'CHARGED'", amount: event.data.amount }
      PaymentDeclined: { status: "'DECLINED'" }
      PaymentRefunded: { status: "'REFUNDED'" }
  - name: order-fulfilment
    type: saga
    input: events
    correlate: data.orderId
    maxEventVersion: ${versions}
    output: { commands: [order-commands, inventory-commands, payment-commands], log: saga-log }
    startOn: OrderPlaced
    flow:
      - name: reserve-stock
        send: { to: inventory-commands, type: ReserveStock, aggregateId: start.data.sku, data: { orderId: sagaId, quantity: start.data.quantity } }
        completeOn: StockReserved
        failOn: StockUnavailable
        compensate: { to: inventory-commands, type: ReleaseStock, aggregateId: start.data.sku, data: { orderId: sagaId, quantity: start.data.quantity } }
        timeoutMs: ${SAGA_TIMEOUT_MS}
      - name: charge-payment
        send: { to: payment-commands, type: ChargePayment, aggregateId: "'pay-' & sagaId", data: { orderId: sagaId, amount: start.data.amount } }
        completeOn: PaymentCharged
        failOn: PaymentDeclined
        compensate: { to: payment-commands, type: RefundPayment, aggregateId: "'pay-' & sagaId", data: { orderId: sagaId } }
        timeoutMs: ${SAGA_TIMEOUT_MS}
      - name: confirm-order
        send: { to: order-commands, type: ConfirmOrder, aggregateId: sagaId }
        completeOn: OrderConfirmed
    onFailure: { to: order-commands, type: CancelOrder, aggregateId: sagaId, data: { reason: reason } }
`;
  },
  source(rng: Rng, opts) {
    const skus = Math.max(2, Math.min(MAX_SKUS, opts.keys));
    const sku = () => `sku-${String(rng.int(skus)).padStart(2, '0')}`;
    let seq = 0;
    let badSeq = 0;
    const perKind = new Map<BadKind, number>();
    const stamp = () => new Date(BASE_TIME + seq * 7).toISOString();
    /** order ids placed so far (for ORDER_EXISTS) and recent PlaceOrder records (for retries) */
    const placed: string[] = [];
    const recent: { key: string; value: Buffer }[] = [];
    const command = (commandType: string, aggregateId: string, data: Record<string, unknown>) => {
      seq++;
      const c: Record<string, unknown> = { commandId: `${GENERATOR_COMMAND_PREFIX}${seq}`, commandType, aggregateId, userId: `user-${seq % 13}`, timestamp: stamp(), data };
      if (rng.chance(0.3)) c.correlationId = `corr-${seq}`;
      return json(c);
    };

    return {
      good(): GenRecord {
        const r = rng.next();
        if (r < 0.2) {
          const id = sku();
          return { topic: 'inventory-commands', key: id, value: command('AddStock', id, { quantity: 1 + rng.int(10) }) };
        }
        if (r < 0.23 && recent.length) {
          // a retry: the same PlaceOrder (same commandId, same bytes) again
          const again = rng.pick(recent);
          return { topic: 'order-commands', key: again.key, value: again.value };
        }
        if (r < 0.25 && placed.length) {
          // another PlaceOrder for an order that exists: ORDER_EXISTS, no second saga
          const id = rng.pick(placed);
          return { topic: 'order-commands', key: id, value: command('PlaceOrder', id, { customerId: 'someone-else', sku: sku(), quantity: 1, amount: 5 }) };
        }
        const id = `ord-${String(placed.length + 1).padStart(6, '0')}`;
        placed.push(id);
        const quantity = r < 0.28 ? rng.pick([0, -1]) : 1 + rng.int(3);
        const amount = rng.chance(0.12) ? PAYMENT_LIMIT + 1 + rng.int(500) : 1 + rng.int(PAYMENT_LIMIT);
        const value = command('PlaceOrder', id, { customerId: `customer-${rng.int(50)}`, sku: sku(), quantity, amount });
        recent.push({ key: id, value });
        if (recent.length > 20) recent.shift();
        return { topic: 'order-commands', key: id, value };
      },
      bad(kind: BadKind): GenRecord {
        const n = perKind.get(kind) ?? 0;
        perKind.set(kind, n + 1);
        badSeq++;
        // unknown types and too-new versions are only bad as events (a command of an unknown type is rejected)
        const where = kind === 'unknown-type' || kind === 'too-new-version' ? 'events' : (['order-commands', 'inventory-commands', 'events'] as const)[n % 3]!;
        // bad events name orders no PlaceOrder uses, so none of them can touch a saga instance
        const key = where === 'events' ? `bad-order-${badSeq}` : where === 'inventory-commands' ? sku() : `ord-bad-${badSeq}`;
        const tpl: Record<string, unknown> =
          where === 'events'
            ? { eventId: `bad-event-${badSeq}`, eventType: 'OrderPlaced', eventVersion: 1, aggregateType: 'Order', aggregateId: key, aggregateVersion: 1, timestamp: stamp(), data: { orderId: key, sku: 'sku-00', quantity: 1, amount: 5 } }
            : where === 'inventory-commands'
              ? { commandId: `bad-command-${badSeq}`, commandType: 'AddStock', aggregateId: key, userId: 'user-bad', timestamp: stamp(), data: { quantity: 5 } }
              : { commandId: `bad-command-${badSeq}`, commandType: 'PlaceOrder', aggregateId: key, userId: 'user-bad', timestamp: stamp(), data: { customerId: 'c', sku: 'sku-00', quantity: 1, amount: 5 } };
        const toEvents = where === 'events';
        const { key: k, value } = spoil(
          kind,
          envelopeSpoilable(key, tpl, toEvents, 'OrderLost'),
          rng,
          opts.maxRecordBytes,
        );
        return { topic: where, key: k, value, ...(k === null ? { partition: rng.int(1 << 30) } : {}), headers: { [BAD_KIND_HEADER]: kind } };
      },
    };
  },
};
