/**
 * The orders workload: the event-sourcing features the bank workload does not use, under the same faults.
 *
 * - `orders`, a **declarative** aggregate (rules in the YAML, no module) partitioned by **tenant**: commands carry a
 *   tenantId and are keyed `tenantId:orderId`; five tenants use the same order ids, so only the tenant tells their
 *   aggregates apart. It keeps a **history** store, and **CancelOrder emits two events** (RefundIssued when the order
 *   had a total, then OrderCancelled), which must be atomic. Two **stateless steps** run in front of it: a `filter`
 *   that drops `Ping` commands (no reply, no event, no dead letter) and a `map` that upper-cases `data.sku`, which
 *   fails on a numeric sku: that command goes to the dead-letter topic as HANDLER_FAILED (the handler-error path)
 *   and the records after it are processed.
 * - `order-view`, a projection written as a **module** (test/chaos/app/order-view.ts) over the events, with a `filter`
 *   step (the internal tenant `tenant-0` gets no views) and a `route` step that copies every OrderShipped to the
 *   `shipments` topic (`continue: true`: it is projected as well).
 * - `order-sizes`, a declarative projection with a `groupBy` whose key is **not a string**: the object
 *   `{status, items}`, written as JSON (`{"status":"open","items":2}`), counting orders and summing their totals.
 * - The aggregate writes ItemAdded at eventVersion 1 ({sku, price}); both projections read version 2 ({sku,
 *   unitPrice, quantity}) through a **module upcaster** (test/chaos/app/item-added-v2.ts). A too-new event is v3.
 *
 * Bad records go to both inputs as in the bank workload; the verifier's model is test/chaos/verify/model-orders.ts.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BAD_KIND_HEADER, json, spoil, type BadKind } from '../corpus.ts';
import type { Rng } from '../rng.ts';
import { processingYaml, topicYaml, type GenRecord, type TopologyParams, type Workload } from './workload.ts';

const VIEW_MODULE = fileURLToPath(new URL('../app/order-view.ts', import.meta.url));
const UPCASTER_MODULE = fileURLToPath(new URL('../app/item-added-v2.ts', import.meta.url));

export const ordersTopics = (app: string) => ({
  commands: `${app}-commands`,
  events: `${app}-events`,
  replies: `${app}-replies`,
  view: `${app}-order-view`,
  /** order-view's route step copies OrderShipped here */
  shipments: `${app}-shipments`,
  /** the grouped view of order-sizes */
  sizes: `${app}-order-sizes`,
  /** internal: written by order-sizes, read by its group stage */
  repartition: `${app}-order-sizes-repartition`,
});

export const TENANTS = 5;
/** order-view's filter step drops this tenant's events */
export const INTERNAL_TENANT = 'tenant-0';
/** a valid price is an integer in 1..MAX_PRICE */
export const MAX_PRICE = 10_000;

const BASE_TIME = Date.UTC(2026, 10, 28);

type Status = 'none' | 'open' | 'shipped';

interface Sim {
  status: Status;
  items: number;
  version: number;
  /** the order id in use for this slot: a shipped order is left behind for a new one */
  generation: number;
  recent: Buffer[];
}

export const ordersWorkload: Workload = {
  name: 'orders',
  inputTopics: (app) => [
    { alias: 'commands', name: ordersTopics(app).commands, config: {} },
    { alias: 'events', name: ordersTopics(app).events, config: { 'retention.ms': '-1' } },
  ],
  processors: (app) => [
    { processor: 'orders', inputs: [ordersTopics(app).commands] },
    { processor: 'order-view', inputs: [ordersTopics(app).events] },
    { processor: 'order-sizes', inputs: [ordersTopics(app).events] },
    // after the first stage: once that caught up, the repartition topic holds all the group stage will read
    { processor: 'order-sizes-group', inputs: [ordersTopics(app).repartition] },
  ],
  aimAt: (app) => [[ordersTopics(app).sizes], [ordersTopics(app).repartition], [ordersTopics(app).shipments]],
  topologyYaml(p: TopologyParams): string {
    const t = ordersTopics(p.app);
    const versions = '{ OrderPlaced: 1, ItemAdded: 2, OrderShipped: 1, RefundIssued: 1, OrderCancelled: 1 }';
    return `app: ${p.app}
kafka: { brokers: "${p.brokers.join(',')}", clientId: ${p.app} }
${processingYaml(p)}http: { port: 0, host: 127.0.0.1 }
modules: { root: "${dirname(VIEW_MODULE)}" }
upcasters:
  - { eventType: ItemAdded, fromVersion: 1, toVersion: 2, module: "${UPCASTER_MODULE}" }
topics:
${topicYaml('commands', t.commands, p)}${topicYaml('events', t.events, p, { 'retention.ms': '-1' })}${topicYaml('replies', t.replies, p)}${topicYaml('order-view', t.view, p, { 'cleanup.policy': 'compact' })}${topicYaml('shipments', t.shipments, p)}${topicYaml('order-sizes', t.sizes, p, { 'cleanup.policy': 'compact' })}processors:
  - name: orders
    type: aggregate
    aggregateType: Order
    input: commands
    partitioning: tenant
    history: true
    output: { events: events, replies: replies }
    steps:
      - filter: "commandType != 'Ping'"
      - map: { data.sku: "$uppercase(data.sku)" }
    initialState: { status: none, items: 0, total: 0 }
    commands:
      PlaceOrder:
        reject:
          - { if: "state.status != 'none'", reason: the order exists, code: ORDER_EXISTS }
          - { if: "$not($type(command.data.customer) = 'string')", reason: an order needs a customer, code: INVALID_CUSTOMER }
        emit: [{ type: OrderPlaced, data: { customer: command.data.customer } }]
      AddItem:
        reject:
          - { if: "state.status != 'open'", reason: the order is not open, code: NOT_OPEN }
          - if: "$not($type(command.data.price) = 'number' and command.data.price >= 1 and command.data.price <= ${MAX_PRICE} and $floor(command.data.price) = command.data.price)"
            reason: a price is an integer from 1 to ${MAX_PRICE}
            code: INVALID_PRICE
        emit: [{ type: ItemAdded, data: { sku: command.data.sku, price: command.data.price } }]
      ShipOrder:
        reject:
          - { if: "state.status != 'open'", reason: the order is not open, code: NOT_OPEN }
          - { if: "state.items = 0", reason: nothing to ship, code: EMPTY_ORDER }
        emit: [{ type: OrderShipped, data: { items: state.items, total: state.total } }]
      CancelOrder:
        reject: [{ if: "state.status != 'open'", reason: the order is not open, code: NOT_OPEN }]
        emit:
          - { type: RefundIssued, when: "state.total > 0", data: { amount: state.total } }
          - { type: OrderCancelled, data: { items: state.items } }
    evolve:
      OrderPlaced: { status: "'open'", items: "0", total: "0" }
      ItemAdded: { items: "state.items + 1", total: "state.total + event.data.price" }
      OrderShipped: { status: "'shipped'" }
      OrderCancelled: { status: "'none'", items: "0", total: "0" }
  - name: order-view
    type: projection
    input: events
    output: order-view
    module: "${VIEW_MODULE}"
    unknownEvents: dlq
    maxEventVersion: ${versions}
    steps:
      - filter: "tenantId != '${INTERNAL_TENANT}'"
      - route: { by: eventType, to: { OrderShipped: shipments }, continue: true }
  - name: order-sizes
    type: projection
    input: events
    output: order-sizes
    unknownEvents: dlq
    maxEventVersion: ${versions}
    on:
      OrderPlaced: { set: { status: "'open'", items: "0", total: "0", version: aggregateVersion } }
      ItemAdded: { set: { version: aggregateVersion }, increment: { items: 1, total: "data.unitPrice * data.quantity" } }
      OrderShipped: { set: { status: "'shipped'", version: aggregateVersion } }
      RefundIssued: { set: { version: aggregateVersion } }
      OrderCancelled: { delete: true }
    groupBy:
      key: "{ 'status': status, 'items': items }"
      aggregate: { orders: count, total: { sum: total }, versionSquares: { sum: "version * version" } }
`;
  },
  source(rng: Rng, opts) {
    const sims = new Map<number, Sim>();
    let seq = 0;
    let badSeq = 0;
    const perKind = new Map<BadKind, number>();
    const stamp = () => new Date(BASE_TIME + seq * 7).toISOString();
    const tenantOf = (slot: number) => `tenant-${slot % TENANTS}`;
    // the five tenants of slots 5k..5k+4 share order ids
    const orderOf = (slot: number, generation: number) => `ord-${String(Math.floor(slot / TENANTS)).padStart(5, '0')}-${generation}`;

    /** the generator's guess of what the aggregate will do, only to send mostly-sensible commands */
    const simulate = (s: Sim, c: { commandType: string; expectedVersion?: number; data: Record<string, unknown> }) => {
      if (c.expectedVersion !== undefined && c.expectedVersion !== s.version) return;
      const price = c.data.price as number;
      const validPrice = Number.isSafeInteger(price) && price >= 1 && price <= MAX_PRICE;
      if (c.commandType === 'PlaceOrder' && s.status === 'none' && typeof c.data.customer === 'string') [s.status, s.items, s.version] = ['open', 0, s.version + 1];
      else if (c.commandType === 'AddItem' && s.status === 'open' && validPrice && typeof c.data.sku === 'string') [s.items, s.version] = [s.items + 1, s.version + 1];
      else if (c.commandType === 'ShipOrder' && s.status === 'open' && s.items > 0) [s.status, s.version] = ['shipped', s.version + 1];
      else if (c.commandType === 'CancelOrder' && s.status === 'open') [s.status, s.items, s.version] = ['none', 0, s.version + 1 + (s.items > 0 ? 1 : 0)];
    };

    return {
      good(): GenRecord {
        const slot = rng.int(opts.keys);
        let s = sims.get(slot) ?? { status: 'none' as Status, items: 0, version: 0, generation: 0, recent: [] };
        if (s.status === 'shipped' && rng.chance(0.8)) s = { status: 'none', items: 0, version: 0, generation: s.generation + 1, recent: [] };
        sims.set(slot, s);
        const tenantId = tenantOf(slot);
        const aggregateId = orderOf(slot, s.generation);
        const key = `${tenantId}:${aggregateId}`;
        if (s.recent.length && rng.chance(0.02)) {
          // a retry: the same command (same commandId, same bytes) again
          return { topic: 'commands', key, value: rng.pick(s.recent) };
        }
        seq++;
        const r = rng.next();
        const sku = () => `sku-${rng.int(40)}`;
        let commandType: string;
        let data: Record<string, unknown> = {};
        let handlerFails = false;
        if (s.status === 'none') {
          if (r < 0.85) [commandType, data] = ['PlaceOrder', { customer: `customer-${slot % 97}` }];
          else if (r < 0.9) [commandType, data] = ['PlaceOrder', { note: 'no customer' }];
          else if (r < 0.95) [commandType, data] = ['AddItem', { sku: sku(), price: 10 }];
          else commandType = 'CancelOrder';
        } else if (s.status === 'open') {
          if (r < 0.03) [commandType, data] = ['PlaceOrder', { customer: 'someone-else' }];
          else if (r < 0.6) [commandType, data] = s.items < 6 ? ['AddItem', { sku: sku(), price: 1 + rng.int(500) }] : ['ShipOrder', {}];
          else if (r < 0.64) [commandType, data] = ['AddItem', { sku: sku(), price: rng.pick([0, -5, MAX_PRICE + 1, 1.5]) }];
          else if (r < 0.66) [commandType, data, handlerFails] = ['AddItem', { sku: 4711, price: 20 }, true];
          else if (r < 0.8) commandType = 'ShipOrder';
          else if (r < 0.88) commandType = 'CancelOrder';
          else if (r < 0.94) commandType = 'Ping';
          else commandType = 'ApplyDiscount';
        } else {
          commandType = rng.pick(['AddItem', 'PlaceOrder', 'CancelOrder', 'ShipOrder']);
          data = commandType === 'AddItem' ? { sku: sku(), price: 5 } : commandType === 'PlaceOrder' ? { customer: 'again' } : {};
        }
        const v = rng.next();
        const expectedVersion = v < 0.4 ? undefined : v < 0.92 ? s.version : s.version > 0 ? Math.max(0, s.version - 1 - rng.int(2)) : 3;
        const command: Record<string, unknown> = { commandId: `o-${seq}`, commandType, aggregateId, tenantId, userId: `user-${seq % 11}`, timestamp: stamp(), data };
        if (expectedVersion !== undefined) command.expectedVersion = expectedVersion;
        if (rng.chance(0.3)) command.correlationId = `corr-${seq % 89}`;
        if (!handlerFails && commandType !== 'Ping') simulate(s, command as { commandType: string; expectedVersion?: number; data: Record<string, unknown> });
        const value = json(command);
        if (handlerFails) {
          // a good envelope the map step fails on: it must reach the dead-letter topic as HANDLER_FAILED
          return { topic: 'commands', key, value, headers: { [BAD_KIND_HEADER]: 'handler-failed' } };
        }
        s.recent.push(value);
        if (s.recent.length > 4) s.recent.shift();
        return { topic: 'commands', key, value };
      },
      bad(kind: BadKind): GenRecord {
        const slot = rng.int(opts.keys);
        const tenantId = tenantOf(slot);
        const aggregateId = orderOf(slot, 0);
        const key = `${tenantId}:${aggregateId}`;
        const n = perKind.get(kind) ?? 0;
        perKind.set(kind, n + 1);
        const toEvents = kind === 'unknown-type' || kind === 'too-new-version' || n % 2 === 1;
        badSeq++;
        const tpl: Record<string, unknown> = toEvents
          ? { eventId: `bad-event-${badSeq}`, eventType: 'ItemAdded', eventVersion: 1, aggregateType: 'Order', aggregateId, tenantId, aggregateVersion: 1, timestamp: stamp(), data: { sku: 'SKU-1', price: 5 } }
          : { commandId: `bad-command-${badSeq}`, commandType: 'AddItem', aggregateId, tenantId, userId: 'user-bad', timestamp: stamp(), data: { sku: 'sku-1', price: 5 } };
        const { eventId: _e, commandId: _c, ...withoutId } = tpl;
        const { tenantId: _t, ...withoutTenant } = tpl;
        const { key: k, value } = spoil(
          kind,
          {
            key,
            value: tpl,
            wrongFieldTypes: toEvents ? { ...tpl, aggregateVersion: '1' } : { ...tpl, tenantId: 7 },
            // a command without tenantId cannot be keyed under tenant partitioning; an event without its id is no event
            missingFields: toEvents || n % 4 === 2 ? withoutId : withoutTenant,
            unknownType: { ...tpl, eventType: 'OrderLost' },
            tooNewVersion: { ...tpl, eventVersion: 3 },
            // the order id alone, without the tenant: the key of another partitioning
            keyMismatch: { key: aggregateId, value: tpl },
            fields: { hugeNumber: toEvents ? 'aggregateVersion' : 'expectedVersion', deeplyNested: 'tenantId', invalidUtf8: 'aggregateId' },
          },
          rng,
          opts.maxRecordBytes,
        );
        return { topic: toEvents ? 'events' : 'commands', key: k, value, ...(k === null ? { partition: rng.int(1 << 30) } : {}), headers: { [BAD_KIND_HEADER]: kind } };
      },
    };
  },
};
