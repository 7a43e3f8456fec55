/**
 * Model of the orders workload (test/chaos/workloads/orders.ts), from docs/aggregates.md, docs/projections.md,
 * docs/topology.md (steps), docs/upcasting.md, docs/wire-formats.md and the workload's rules (not from code).
 *
 * `orders`, a declarative aggregate partitioned by tenant. Per command record, in order:
 *   - refused as envelopes.ts says (tenant partitioning: a tenantId is required, the key is tenantId:aggregateId);
 *   - the filter step drops a `Ping` (no reply, nothing stored, no dead letter);
 *   - the map step sets data.sku to its upper case; a data.sku that is not a string fails it: HANDLER_FAILED, the
 *     command is dead-lettered (no reply, nothing stored);
 *   - per aggregate (the key): a commandId seen before gets the first reply again (no events); an expectedVersion
 *     (not null) other than the version gets `conflict` (CONCURRENCY_CONFLICT); else the rules, checked in order:
 *       PlaceOrder   ORDER_EXISTS (status not none), INVALID_CUSTOMER (data.customer not a string)
 *                    → OrderPlaced {customer}
 *       AddItem      NOT_OPEN (status not open), INVALID_PRICE (data.price not an integer 1..10,000)
 *                    → ItemAdded {sku, price} (eventVersion 1; sku absent when the command has none)
 *       ShipOrder    NOT_OPEN, EMPTY_ORDER (no items) → OrderShipped {items, total}
 *       CancelOrder  NOT_OPEN → RefundIssued {amount: total} when total > 0, then OrderCancelled {items}: two events
 *                    from one command, versions v+1 and v+2
 *       other types  COMMAND_UNKNOWN
 *     with state {status: none → open (OrderPlaced: items 0, total 0) → shipped (OrderShipped); OrderCancelled: none,
 *     items 0, total 0; ItemAdded: items + 1, total + price}. Events carry aggregateType Order, the command's
 *     aggregateId and tenantId, aggregateVersion = version + i, causationId = commandId, correlationId = the
 *     command's or its commandId, its timestamp and userId; they are keyed tenantId:aggregateId.
 *   Stores: `state` {version, state}, `commands` ([key, commandId] → reply + aggregateId), `history` (key:version, 10 digits
 *   → the event as on the events topic, eventId included).
 *
 * Both projections read the events topic; ItemAdded v1 {sku, price} is upcast to v2 {sku, unitPrice: price,
 * quantity: 1}; maxEventVersion is ItemAdded 2, the other types 1.
 *
 * `order-view` (module test/chaos/app/order-view.ts; its rules restated here): after the version check, its filter
 * step drops events whose tenantId is absent or `tenant-0`; its route step copies each OrderShipped (same key, the
 * event as read) to the shipments topic and lets it through; then an event type the module does not list is
 * refused (EVENT_TYPE_UNKNOWN). Views per key: OrderPlaced {tenant, order, customer, status open, lines 0, units 0,
 * total 0, skus [], version}; ItemAdded lines + 1, units + quantity, total + unitPrice × quantity, sku appended;
 * OrderShipped status shipped; RefundIssued refunded: amount; OrderCancelled deletes the view (a tombstone; the store
 * keeps {view: null, version}). Each view record has header foldstream.view.version = the event's aggregateVersion.
 *
 * `order-sizes` (declarative, no steps): the first stage's view {status, items, total, version} (OrderPlaced sets
 * status open, items 0, total 0; ItemAdded adds 1 item and unitPrice × quantity; OrderShipped status shipped;
 * RefundIssued only the version; OrderCancelled deletes it), grouped by the object {status, items}, whose key is its
 * JSON `{"status":"open","items":2}`, counting `orders` and summing `total` and versionSquares: model-groups.ts.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import { canonical, checkPartition, compareSequence, compareStore, emptySequenceFindings, type Actual, type Expected, type StoreFindings } from './compare.ts';
import { checkPositionedAtEnd, checkPositionedPast, EventIds, expectedEvent, parseValue, ReplyReader, replyValue, storedReplies, storedReplyValue, type Reply } from './aggregate-checks.ts';
import { DlqCheck } from './dlq.ts';
import { classifyCommand, classifyEvent, type Command, type Event, type Obj } from './envelopes.ts';
import { countVerdict, emptyInputSummary, type ModelCheck, type ModelFindings } from './model.ts';
import { GroupByCheck, VERSION_SQUARES, type Membership } from './model-groups.ts';
import type { VRecord } from './read-topics.ts';
import { ChangelogState } from './store.ts';
import { at, BAD_KIND_HEADER, changelogName, dlqName, VIEW_VERSION_HEADER, where } from './wire.ts';

export interface OrdersTopics {
  app: string;
  commands: string;
  events: string;
  replies: string;
  view: string;
  shipments: string;
  sizes: string;
  partitions: number;
  maxRecordBytes: number;
}

export const AGGREGATE = 'orders';
export const VIEW = 'order-view';
export const SIZES = 'order-sizes';
const MAX_EVENT_VERSION = new Map([['OrderPlaced', 1], ['ItemAdded', 2], ['OrderShipped', 1], ['RefundIssued', 1], ['OrderCancelled', 1]]);
const MAX_PRICE = 10_000;
const FILTERED_TENANT = 'tenant-0';

type Status = 'none' | 'open' | 'shipped';


interface OrderModel {
  status: Status;
  items: number;
  total: number;
  version: number;
  replies: Map<string, Reply>;
  replySeq: Expected[];
  occurrences: Map<string, number>;
  /** per version, the expected event (canonical, without eventId) */
  events: Expected[];
  /** order-view: the view (undefined before the first event, null once deleted), its records, the shipments */
  view: Obj | null | undefined;
  views: Expected[];
  shipments: Expected[];
  /** order-sizes' first-stage view */
  sizeView: Obj | null;
}

/** The declarative rules: a rejection code, or the events (type and data) of an accepted command. */
function decideModel(o: OrderModel, c: Command): { code: string } | { events: { eventType: string; data: Obj }[] } {
  const d = c.data;
  switch (c.commandType) {
    case 'PlaceOrder':
      if (o.status !== 'none') return { code: 'ORDER_EXISTS' };
      if (typeof d.customer !== 'string') return { code: 'INVALID_CUSTOMER' };
      return { events: [{ eventType: 'OrderPlaced', data: { customer: d.customer } }] };
    case 'AddItem': {
      if (o.status !== 'open') return { code: 'NOT_OPEN' };
      const p = d.price;
      if (!(typeof p === 'number' && p >= 1 && p <= MAX_PRICE && Math.floor(p) === p)) return { code: 'INVALID_PRICE' };
      const data: Obj = { price: p };
      if (d.sku !== undefined) data.sku = d.sku;
      return { events: [{ eventType: 'ItemAdded', data }] };
    }
    case 'ShipOrder':
      if (o.status !== 'open') return { code: 'NOT_OPEN' };
      if (o.items === 0) return { code: 'EMPTY_ORDER' };
      return { events: [{ eventType: 'OrderShipped', data: { items: o.items, total: o.total } }] };
    case 'CancelOrder':
      if (o.status !== 'open') return { code: 'NOT_OPEN' };
      return {
        events: [
          ...(o.total > 0 ? [{ eventType: 'RefundIssued', data: { amount: o.total } }] : []),
          { eventType: 'OrderCancelled', data: { items: o.items } },
        ],
      };
    default:
      return { code: 'COMMAND_UNKNOWN' };
  }
}

/** ItemAdded v1 → v2, as the module upcaster does it. */
function upcast(e: { eventType: string; eventVersion: number; data: Obj }): Obj {
  if (e.eventType !== 'ItemAdded' || e.eventVersion !== 1) return e.data;
  const { price, ...rest } = e.data;
  return { ...rest, unitPrice: price, quantity: 1 };
}

/** order-view's module, restated. */
function projectView(view: Obj | null | undefined, e: { eventType: string; aggregateId: string; tenantId: string; aggregateVersion: number; data: Obj }): Obj | null {
  const version = e.aggregateVersion;
  const d = e.data;
  const v = view ?? {};
  switch (e.eventType) {
    case 'OrderPlaced':
      return { tenant: e.tenantId, order: e.aggregateId, customer: d.customer, status: 'open', lines: 0, units: 0, total: 0, skus: [], version };
    case 'ItemAdded':
      return {
        ...v,
        lines: ((v.lines as number) ?? 0) + 1,
        units: ((v.units as number) ?? 0) + (d.quantity as number),
        total: ((v.total as number) ?? 0) + (d.unitPrice as number) * (d.quantity as number),
        skus: [...((v.skus as unknown[]) ?? []), d.sku],
        version,
      };
    case 'OrderShipped':
      return { ...v, status: 'shipped', version };
    case 'RefundIssued':
      return { ...v, refunded: d.amount, version };
    default:
      return null;
  }
}

/** order-sizes' first-stage rules, restated. */
function projectSize(view: Obj | null, e: { eventType: string; aggregateVersion: number; data: Obj }): Obj | null {
  const version = e.aggregateVersion;
  switch (e.eventType) {
    case 'OrderPlaced':
      return { ...view, status: 'open', items: 0, total: 0, version };
    case 'ItemAdded':
      return { ...view, items: ((view?.items as number) ?? 0) + 1, total: ((view?.total as number) ?? 0) + (e.data.unitPrice as number) * (e.data.quantity as number), version };
    case 'OrderShipped':
      return { ...view, status: 'shipped', version };
    case 'RefundIssued':
      return { ...view, version };
    default:
      return null;
  }
}

/** order-sizes' groupBy key is the object {status, items}, written as JSON in that order. */
function sizeGroup(view: Obj | null): Membership | undefined {
  if (view === null) return undefined;
  const version = view.version as number;
  return { key: JSON.stringify({ status: view.status, items: view.items }), sums: { total: view.total as number, [VERSION_SQUARES]: version * version } };
}

export class OrdersModel implements ModelCheck {
  readonly workload = 'orders';
  readonly inputTopics: string[];
  readonly outputTopics: string[];
  readonly transactionalTopics: string[];
  private readonly summary = emptyInputSummary();
  private readonly orders = new Map<string, OrderModel>();
  private readonly commandDlq: DlqCheck;
  private readonly viewDlq: DlqCheck;
  private readonly stateLog: ChangelogState;
  private readonly commandsLog: ChangelogState;
  private readonly historyLog: ChangelogState;
  private readonly viewLog: ChangelogState;
  private readonly sizes: GroupByCheck;
  private readonly delivered = { events: new Map<string, Actual[]>(), replies: new Map<string, Actual[]>(), views: new Map<string, Actual[]>(), shipments: new Map<string, Actual[]>() };
  private readonly extra = { events: emptySequenceFindings(), replies: emptySequenceFindings(), views: emptySequenceFindings(), shipments: emptySequenceFindings() };
  /** the events topic's eventIds, and those replies and shipments name */
  private readonly eventIds = new EventIds();
  private readonly replyReader = new ReplyReader(this.eventIds);
  private readonly stats = { pings: 0, handlerFailures: 0, filteredEvents: 0, filteredBadEvents: 0 };

  constructor(private readonly t: OrdersTopics) {
    const cl = (p: string, s: string) => changelogName(t.app, p, s);
    this.commandDlq = new DlqCheck(dlqName(t.app, AGGREGATE), AGGREGATE);
    this.viewDlq = new DlqCheck(dlqName(t.app, VIEW), VIEW);
    this.stateLog = new ChangelogState(cl(AGGREGATE, 'state'));
    this.commandsLog = new ChangelogState(cl(AGGREGATE, 'commands'));
    this.historyLog = new ChangelogState(cl(AGGREGATE, 'history'));
    this.viewLog = new ChangelogState(cl(VIEW, 'view'));
    this.sizes = new GroupByCheck({
      app: t.app,
      processor: SIZES,
      output: t.sizes,
      input: t.events,
      partitions: t.partitions,
      countField: 'orders',
      sumFields: ['total', VERSION_SQUARES],
      statsPrefix: 'size',
    });
    this.inputTopics = [t.commands];
    const internal = [this.commandDlq.topic, this.viewDlq.topic, this.stateLog.topic, this.commandsLog.topic, this.historyLog.topic, this.viewLog.topic];
    this.outputTopics = [t.events, t.replies, t.view, t.shipments, ...internal, ...this.sizes.topics];
    // the aggregate's command-expiry index is written in the same transactions; its content is not modelled
    this.transactionalTopics = [...this.outputTopics, cl(AGGREGATE, 'command-expiry')];
  }

  private order(key: string): OrderModel {
    let o = this.orders.get(key);
    if (!o) {
      o = { status: 'none', items: 0, total: 0, version: 0, replies: new Map(), replySeq: [], occurrences: new Map(), events: [], view: undefined, views: [], shipments: [], sizeView: null };
      this.orders.set(key, o);
    }
    return o;
  }

  onInput(r: VRecord): void {
    const v = classifyCommand(r, this.t.maxRecordBytes, true);
    if ('good' in v && v.good.commandType === 'Ping') {
      countVerdict(this.summary, r, false, '', BAD_KIND_HEADER);
      this.stats.pings++;
      return;
    }
    const failsMap = 'good' in v && v.good.data.sku !== undefined && typeof v.good.data.sku !== 'string';
    const bad = 'bad' in v ? v : failsMap ? { bad: 'HANDLER_FAILED', why: 'map step: data.sku is not a string' } : undefined;
    countVerdict(this.summary, r, bad !== undefined, bad ? `${bad.bad}: ${bad.why}` : '', BAD_KIND_HEADER);
    if (bad) {
      if (failsMap) this.stats.handlerFailures++;
      return this.commandDlq.expect(r, bad.bad, r.headers[BAD_KIND_HEADER] ?? bad.why);
    }
    const c = (v as { good: Command }).good;
    if (typeof c.data.sku === 'string') c.data = { ...c.data, sku: c.data.sku.toUpperCase() };
    this.apply(c, r);
  }

  private apply(c: Command, r: VRecord): void {
    const key = `${c.tenantId!}:${c.aggregateId}`;
    const o = this.order(key);
    const k = (o.occurrences.get(c.commandId) ?? 0) + 1;
    o.occurrences.set(c.commandId, k);
    let reply = o.replies.get(c.commandId);
    if (!reply) {
      if (c.expectedVersion !== undefined && c.expectedVersion !== null && c.expectedVersion !== o.version) {
        reply = { commandId: c.commandId, status: 'conflict', code: 'CONCURRENCY_CONFLICT', aggregateVersion: o.version, events: 0 };
      } else {
        const d = decideModel(o, c);
        if ('code' in d) {
          reply = { commandId: c.commandId, status: 'rejected', code: d.code, aggregateVersion: o.version, events: 0 };
        } else {
          for (const e of d.events) this.append(o, key, c, r, e);
          reply = { commandId: c.commandId, status: 'accepted', code: undefined, aggregateVersion: o.version, events: d.events.length };
        }
      }
      o.replies.set(c.commandId, reply);
    }
    o.replySeq.push({ id: `${c.commandId}#${k}`, value: replyValue(reply) });
  }

  /** One event of an accepted command: the aggregate's state, then what each projection makes of it. */
  private append(o: OrderModel, key: string, c: Command, r: VRecord, e: { eventType: string; data: Obj }): void {
    o.version++;
    switch (e.eventType) {
      case 'OrderPlaced':
        [o.status, o.items, o.total] = ['open', 0, 0];
        break;
      case 'ItemAdded':
        [o.items, o.total] = [o.items + 1, o.total + (e.data.price as number)];
        break;
      case 'OrderShipped':
        o.status = 'shipped';
        break;
      case 'OrderCancelled':
        [o.status, o.items, o.total] = ['none', 0, 0];
        break;
    }
    const event = expectedEvent(c, r.timestamp, 'Order', o.version, e, c.tenantId);
    o.events.push({ id: String(o.version), value: event });

    const read = { eventType: e.eventType, aggregateId: c.aggregateId, tenantId: c.tenantId!, aggregateVersion: o.version, data: upcast({ eventType: e.eventType, eventVersion: 1, data: e.data }) };
    // order-view: the filter, the route, the module
    if (c.tenantId === FILTERED_TENANT) {
      this.stats.filteredEvents++;
    } else {
      if (e.eventType === 'OrderShipped') o.shipments.push({ id: String(o.version), value: event });
      o.view = projectView(o.view, read);
      o.views.push({ id: String(o.version), value: canonical(o.view) });
    }
    // order-sizes: its first stage and the group the view is in
    o.sizeView = projectSize(o.sizeView, read);
    this.sizes.onEvent(key, o.sizeView, o.version, sizeGroup(o.sizeView));
  }

  /**
   * A record on the events topic that is not a good event of a known type (the generator's bad records): what each
   * projection must do with it.
   */
  private onRefusedEvent(r: VRecord, v: { bad: string; why: string } | { good: Event }): void {
    let viewVerdict: { bad: string; why: string } | 'filtered' | undefined;
    let sizesVerdict: { bad: string; why: string };
    if ('bad' in v) {
      viewVerdict = sizesVerdict = v;
    } else {
      sizesVerdict = { bad: 'EVENT_TYPE_UNKNOWN', why: v.good.eventType };
      // order-view's filter runs before its check of the type: `tenantId != 'tenant-0'` is false without a tenantId
      viewVerdict = v.good.tenantId === undefined || v.good.tenantId === FILTERED_TENANT ? 'filtered' : sizesVerdict;
      if (viewVerdict === 'filtered') this.stats.filteredBadEvents++;
    }
    countVerdict(this.summary, r, true, `${sizesVerdict.bad}: ${sizesVerdict.why}`, BAD_KIND_HEADER);
    this.sizes.dlq.expect(r, sizesVerdict.bad, r.headers[BAD_KIND_HEADER] ?? sizesVerdict.why);
    if (viewVerdict !== 'filtered') this.viewDlq.expect(r, viewVerdict.bad, r.headers[BAD_KIND_HEADER] ?? viewVerdict.why);
  }

  private deliver(kind: keyof OrdersModel['delivered'], r: VRecord, id: string, value: string): void {
    const key = r.key?.toString('utf8') ?? '<null>';
    checkPartition(this.extra[kind], r, this.t.partitions);
    const list = this.delivered[kind].get(key) ?? [];
    list.push({ id, value, where: at(r) });
    this.delivered[kind].set(key, list);
  }

  onOutput(r: VRecord): void {
    const key = r.key?.toString('utf8') ?? '<null>';
    switch (r.topic) {
      case this.t.events: {
        this.sizes.noteOffset(r);
        const v = classifyEvent(r, this.t.maxRecordBytes, MAX_EVENT_VERSION);
        if ('bad' in v || !MAX_EVENT_VERSION.has(v.good.eventType)) return this.onRefusedEvent(r, v);
        // a good event: the model predicted it from the commands (an event no command caused is found as unexpected)
        countVerdict(this.summary, r, false, '', BAD_KIND_HEADER);
        const { eventId, ...rest } = parseValue(r);
        const version = rest.aggregateVersion as number;
        this.eventIds.delivered(key, version, eventId);
        return this.deliver('events', r, String(version), canonical(rest));
      }
      case this.t.replies: {
        const reply = this.replyReader.read(r, this.extra.replies);
        return this.deliver('replies', r, reply.id, reply.value);
      }
      case this.t.view: {
        if (r.value === null) return this.deliver('views', r, r.headers[VIEW_VERSION_HEADER] ?? `tombstone without a version at ${at(r)}`, canonical(null));
        const v = parseValue(r);
        return this.deliver('views', r, r.headers[VIEW_VERSION_HEADER] ?? `no version header at ${at(r)}`, canonical(v));
      }
      case this.t.shipments: {
        const { eventId, ...rest } = parseValue(r);
        this.eventIds.name(key, at(r), rest.aggregateVersion as number, eventId);
        return this.deliver('shipments', r, String(rest.aggregateVersion), canonical(rest));
      }
      case this.commandDlq.topic:
        return this.commandDlq.onRecord(r);
      case this.viewDlq.topic:
        return this.viewDlq.onRecord(r);
      case this.stateLog.topic:
        return this.stateLog.onRecord(r);
      case this.commandsLog.topic:
        return this.commandsLog.onRecord(r);
      case this.historyLog.topic:
        return this.historyLog.onRecord(r);
      case this.viewLog.topic:
        return this.viewLog.onRecord(r);
      default:
        this.sizes.onOutput(r);
    }
  }

  finish(inputEnds: Map<string, bigint>): ModelFindings {
    const out = this.extra;
    const stateModel = new Map<string, string>();
    const commandsModel = new Map<string, string>();
    const historyModel = new Map<string, string>();
    const viewModel = new Map<string, string>();
    for (const [key, o] of this.orders) {
      compareSequence(out.events, key, o.events, this.delivered.events.get(key) ?? []);
      compareSequence(out.replies, key, o.replySeq, this.delivered.replies.get(key) ?? []);
      compareSequence(out.views, key, o.views, this.delivered.views.get(key) ?? []);
      compareSequence(out.shipments, key, o.shipments, this.delivered.shipments.get(key) ?? []);
      if (o.version > 0) stateModel.set(key, canonical({ version: o.version, state: { status: o.status, items: o.items, total: o.total } }));
      if (o.views.length) viewModel.set(key, canonical({ view: o.view, version: Number(o.views.at(-1)!.id) }));
      const aggregateId = key.slice(key.indexOf(':') + 1);
      // keyed by [aggregate key, commandId]: a commandId is one aggregate's (docs/wire-formats.md)
      for (const [commandId, r] of o.replies) commandsModel.set(JSON.stringify([key, commandId]), storedReplyValue(r, aggregateId));
      // history: each event as the events topic has it (the eventId is foldstream's to choose; it must be the same)
      for (const e of o.events) {
        const version = Number(e.id);
        historyModel.set(`${key}:${String(version).padStart(10, '0')}`, canonical({ ...(JSON.parse(e.value) as Obj), eventId: this.eventIds.get(key, version) ?? '<not on the events topic>' }));
      }
    }
    for (const kind of ['events', 'replies', 'views', 'shipments'] as const) {
      for (const [key, actual] of this.delivered[kind]) if (!this.orders.has(key)) compareSequence(out[kind], key, [], actual);
    }
    // the eventIds a reply or a shipment names are those of the events topic at the same version
    this.eventIds.check(out.replies);
    const stores = [
      compareStore('state', this.stateLog.topic, this.stateLog.values, stateModel),
      compareStore('commands', this.commandsLog.topic, storedReplies(this.commandsLog), commandsModel),
      compareStore('history', this.historyLog.topic, this.historyLog.values, historyModel),
      compareStore('order-view view', this.viewLog.topic, this.viewLog.values, viewModel),
    ];
    const past = (store: StoreFindings, log: ChangelogState, input: string) => checkPositionedPast(store, log, input, this.sizes.lastOffsets.get(input));
    past(stores[3]!, this.viewLog, this.t.events);
    const sizes = this.sizes.finish(past);
    stores.push(...sizes.stores);
    // the aggregate's stores must be positioned at the end of the commands topic
    for (const log of [this.stateLog, this.commandsLog]) checkPositionedAtEnd(stores.find((x) => x.changelog === log.topic)!, log, this.t.commands, inputEnds);
    const stats: Record<string, number> = { orders: this.orders.size, commands: 0, repeatedCommandIds: 0, events: 0, twoEventCommands: 0, ordersCancelled: 0, ordersPlacedAgain: 0, shipments: 0, ...this.stats };
    const tenants = new Set<string>();
    const ids = new Map<string, Set<string>>();
    for (const [key, o] of this.orders) {
      const [tenant, id] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
      tenants.add(tenant);
      ids.set(id, (ids.get(id) ?? new Set()).add(tenant));
      stats.commands! += o.replySeq.length;
      stats.events! += o.events.length;
      stats.shipments! += o.shipments.length;
      const types = o.events.map((e) => (JSON.parse(e.value) as Obj).eventType);
      stats.ordersCancelled! += types.filter((x) => x === 'OrderCancelled').length;
      stats.ordersPlacedAgain! += types.filter((x, i) => x === 'OrderPlaced' && i > 0).length;
      for (const n of o.occurrences.values()) if (n > 1) stats.repeatedCommandIds! += n - 1;
      for (const r of o.replies.values()) {
        if (r.events === 2) stats.twoEventCommands!++;
        const s = r.status === 'rejected' ? `rejected ${r.code}` : r.status;
        stats[s] = (stats[s] ?? 0) + 1;
      }
    }
    stats.tenants = tenants.size;
    stats.orderIdsInSeveralTenants = [...ids.values()].filter((s) => s.size > 1).length;
    Object.assign(stats, sizes.stats);
    return {
      stats,
      input: this.summary,
      outputs: { [this.t.events]: out.events, [this.t.replies]: out.replies, [this.t.view]: out.views, [this.t.shipments]: out.shipments, ...sizes.outputs },
      stores,
      dlq: [this.commandDlq.finish(), this.viewDlq.finish(), ...sizes.dlq],
    };
  }
}
