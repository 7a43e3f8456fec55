/**
 * Model of the saga workload (test/chaos/workloads/saga.ts), from docs/aggregates.md, docs/wire-formats.md, DESIGN §7
 * and the workload's YAML (not from code). Which orders get their stock depends on how the sagas' reservations
 * interleave, so the model does not predict outcomes from the generator's input: it reads what was committed and
 * checks what must hold for any interleaving.
 *
 * 1. The aggregates, exactly. All commands of one aggregate are in one partition of its command topic, in the order
 *    the aggregate processes them, whoever wrote them (the generator or the saga). So each aggregate is replayed from
 *    its command topic as read (read_committed): the rules of the YAML give every reply and event, and the `state`
 *    and `commands` stores. Rules are JSONata, restated with its comparisons (a comparison with a missing value is
 *    false, so `state.status != 'PLACED'` does not reject when there is no status):
 *      orders (Order)     PlaceOrder: ORDER_EXISTS (version > 0), BAD_QUANTITY (not data.quantity > 0)
 *                           → OrderPlaced {orderId, customerId, sku, quantity, amount}
 *                         ConfirmOrder / CancelOrder: NOT_PLACED (status ≠ PLACED) → OrderConfirmed {orderId} /
 *                           OrderCancelled {orderId, reason}
 *      inventory (Stock)  AddStock → StockAdded {quantity}; ReserveStock → StockReserved {orderId, quantity} when
 *                           available ≥ quantity, else StockUnavailable {orderId, quantity, available};
 *                           ReleaseStock → StockReleased {orderId, quantity}
 *      payments (Payment) ChargePayment → PaymentCharged {orderId, amount} when amount ≤ 1000, PaymentDeclined
 *                           {orderId, amount, reason} above; RefundPayment: NOT_CHARGED → PaymentRefunded
 *    Every event exactly once, versions 1..n per aggregate in order, no eventId naming two events anywhere on the
 *    events topic; every command exactly one reply (a repeated commandId: the first reply again).
 * 2. The saga, exactly, given the events. Each instance (order id X) reacts only to the answer to its last command,
 *    so its log, commands and stored state follow from the events topic alone:
 *      OrderPlaced → SagaStarted; ReserveStock(sku, {orderId, quantity})
 *      StockUnavailable → SagaFailed (failed); CancelOrder(X, {reason})
 *      StockReserved → SagaStepCompleted reserve-stock; ChargePayment(pay-X, {orderId, amount})
 *      PaymentDeclined → SagaFailed, SagaCompensated; ReleaseStock, CancelOrder
 *      PaymentCharged → SagaStepCompleted charge-payment; ConfirmOrder(X)
 *      OrderConfirmed → SagaStepCompleted confirm-order, SagaCompleted
 *    Log entries: key X, aggregateVersion 1..n, the correlationId of OrderPlaced, causationId the triggering event's
 *    eventId, timestamp the triggering record's time. Commands: correlationId the same, causationId the triggering
 *    event, userId the triggering event's. A step timeout (one hour: only if processing is stuck) is accepted when
 *    the log has SagaTimedOut for the step the instance was at, followed by SagaFailed and SagaCompensated, and the
 *    commands are the compensations of the steps up to and including it, last first, then CancelOrder.
 *    No saga commandId twice on any command topic; every saga command on the topic it belongs to.
 *    Stores: `sagas` {status, state {step, start}, reactions, logVersion, seen, deadline, correlationId, startedAt,
 *    updatedAt}; `deadlines` one entry per running instance.
 *    The correlate stage: every event with a data.orderId exactly once on the repartition topic, keyed by it.
 * 3. Outcomes, across aggregates: every accepted PlaceOrder starts exactly one saga that ends exactly once
 *    (SagaCompleted; SagaFailed then SagaCompensated; or SagaFailed alone); completed ⇒ order CONFIRMED, payment
 *    CHARGED, stock reserved once and never released; compensated after PaymentDeclined ⇒ stock released exactly
 *    once, order CANCELLED, no refund; amount > 1000 ⇔ declined; failed at reserve-stock ⇒ nothing reserved or
 *    released, no payment, order CANCELLED; per SKU the final `available` (inventory's state changelog) is the sum
 *    of accepted AddStock less the quantities reserved and not released, and never negative in the event stream.
 * 4. Dead letters: the bad commands in the orders' and inventory's dead-letter topics, the bad events in the saga's
 *    first stage's; none anywhere else.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import { canonical, checkPartition, compareSequence, compareStore, emptySequenceFindings, type Actual, type Expected, type SequenceFindings, type StoreFindings } from './compare.ts';
import { checkPositionedPast, EventIds, expectedEvent, parseValue, ReplyReader, replyValue, storedReplies, storedReplyValue, type Reply } from './aggregate-checks.ts';
import { DlqCheck } from './dlq.ts';
import { classifyCommand, classifyEvent, isObj, type Command, type Obj } from './envelopes.ts';
import { countVerdict, emptyInputSummary, type ModelCheck, type ModelFindings } from './model.ts';
import type { VRecord } from './read-topics.ts';
import { ChangelogState } from './store.ts';
import { at, BAD_KIND_HEADER, changelogName, dlqName, where } from './wire.ts';

export interface SagaTopics {
  app: string;
  orderCommands: string;
  inventoryCommands: string;
  paymentCommands: string;
  replies: string;
  events: string;
  sagaLog: string;
  repartition: string;
  partitions: number;
  maxRecordBytes: number;
}

export const SAGA = 'order-fulfilment';
export const INSTANCES = 'order-fulfilment-instances';
const PAYMENT_LIMIT = 1000;
const TIMEOUT_MS = 3_600_000;
const GENERATOR_PREFIX = 'g-';
const STEPS = ['reserve-stock', 'charge-payment', 'confirm-order'] as const;
const EVENT_TYPES = ['OrderPlaced', 'OrderConfirmed', 'OrderCancelled', 'StockAdded', 'StockReserved', 'StockUnavailable', 'StockReleased', 'PaymentCharged', 'PaymentDeclined', 'PaymentRefunded'];
const MAX_EVENT_VERSION = new Map(EVENT_TYPES.map((t) => [t, 1]));

type Kind = 'orders' | 'inventory' | 'payments';
const AGGREGATE_TYPE: Record<Kind, string> = { orders: 'Order', inventory: 'Stock', payments: 'Payment' };
const KIND_OF_TYPE = new Map(Object.entries(AGGREGATE_TYPE).map(([k, v]) => [v, k as Kind]));

/** JSONata's `a != b` and `a > b`: false when a value is missing. */
const ne = (a: unknown, b: unknown) => a !== undefined && b !== undefined && a !== b;
const gt = (a: unknown, b: unknown) => typeof a === 'number' && typeof b === 'number' && a > b;
const ge = (a: unknown, b: unknown) => typeof a === 'number' && typeof b === 'number' && a >= b;
const lt = (a: unknown, b: unknown) => typeof a === 'number' && typeof b === 'number' && a < b;
const le = (a: unknown, b: unknown) => typeof a === 'number' && typeof b === 'number' && a <= b;
/** An object without its undefined fields (an expression with no value leaves the field out). */
const defined = (o: Obj): Obj => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

interface AggregateModel {
  kind: Kind;
  id: string;
  version: number;
  state: Obj;
  replies: Map<string, Reply>;
  replySeq: Expected[];
  occurrences: Map<string, number>;
  events: Expected[];
}

type Decision = { code: string } | { events: { eventType: string; data: Obj }[] };

function decide(a: AggregateModel, c: Command): Decision {
  const d = c.data;
  const s = a.state;
  const one = (eventType: string, data: Obj) => ({ events: [{ eventType, data: defined(data) }] });
  switch (`${a.kind}/${c.commandType}`) {
    case 'orders/PlaceOrder':
      if (a.version > 0) return { code: 'ORDER_EXISTS' };
      if (!gt(d.quantity, 0)) return { code: 'BAD_QUANTITY' };
      return one('OrderPlaced', { orderId: c.aggregateId, customerId: d.customerId, sku: d.sku, quantity: d.quantity, amount: d.amount });
    case 'orders/ConfirmOrder':
      if (ne(s.status, 'PLACED')) return { code: 'NOT_PLACED' };
      return one('OrderConfirmed', { orderId: c.aggregateId });
    case 'orders/CancelOrder':
      if (ne(s.status, 'PLACED')) return { code: 'NOT_PLACED' };
      return one('OrderCancelled', { orderId: c.aggregateId, reason: d.reason });
    case 'inventory/AddStock':
      return one('StockAdded', { quantity: d.quantity });
    case 'inventory/ReserveStock': {
      const events: { eventType: string; data: Obj }[] = [];
      if (ge(s.available, d.quantity)) events.push({ eventType: 'StockReserved', data: defined({ orderId: d.orderId, quantity: d.quantity }) });
      if (lt(s.available, d.quantity)) events.push({ eventType: 'StockUnavailable', data: defined({ orderId: d.orderId, quantity: d.quantity, available: s.available }) });
      return { events };
    }
    case 'inventory/ReleaseStock':
      return one('StockReleased', { orderId: d.orderId, quantity: d.quantity });
    case 'payments/ChargePayment': {
      const events: { eventType: string; data: Obj }[] = [];
      if (le(d.amount, PAYMENT_LIMIT)) events.push({ eventType: 'PaymentCharged', data: defined({ orderId: d.orderId, amount: d.amount }) });
      if (gt(d.amount, PAYMENT_LIMIT)) events.push({ eventType: 'PaymentDeclined', data: defined({ orderId: d.orderId, amount: d.amount, reason: 'over the limit' }) });
      return { events };
    }
    case 'payments/RefundPayment':
      if (ne(s.status, 'CHARGED')) return { code: 'NOT_CHARGED' };
      return one('PaymentRefunded', { orderId: d.orderId, amount: s.amount });
    default:
      return { code: 'COMMAND_UNKNOWN' };
  }
}

/** evolve: an expression with no value removes the field. */
function evolve(a: AggregateModel, e: { eventType: string; data: Obj }): void {
  const set = (fields: Obj) => {
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) delete a.state[k];
      else a.state[k] = v;
    }
  };
  const d = e.data;
  const add = (n: unknown) => (typeof a.state.available === 'number' && typeof n === 'number' ? a.state.available + n : undefined);
  switch (e.eventType) {
    case 'OrderPlaced':
      return set({ status: 'PLACED', sku: d.sku, quantity: d.quantity, amount: d.amount });
    case 'OrderConfirmed':
      return set({ status: 'CONFIRMED' });
    case 'OrderCancelled':
      return set({ status: 'CANCELLED', reason: d.reason });
    case 'StockAdded':
    case 'StockReleased':
      return set({ available: add(d.quantity) });
    case 'StockReserved':
      return set({ available: typeof a.state.available === 'number' && typeof d.quantity === 'number' ? a.state.available - d.quantity : undefined });
    case 'PaymentCharged':
      return set({ status: 'CHARGED', amount: d.amount });
    case 'PaymentDeclined':
      return set({ status: 'DECLINED' });
    case 'PaymentRefunded':
      return set({ status: 'REFUNDED' });
  }
}

/** An event as the events topic holds it (parsed), with where it is. */
interface SeenEvent {
  value: Obj;
  ts: number;
  where: string;
}

interface SagaCommandRecord {
  topic: string;
  key: string;
  command: Command;
  where: string;
}

export class SagaModel implements ModelCheck {
  readonly workload = 'saga';
  readonly inputTopics: string[];
  readonly outputTopics: string[];
  readonly transactionalTopics: string[];
  private readonly summary = emptyInputSummary();
  private readonly aggregates = new Map<string, AggregateModel>();
  private readonly kindOfTopic: Map<string, Kind>;
  private readonly dlq: Record<Kind | 'saga' | 'instances', DlqCheck>;
  private readonly logs: Record<string, ChangelogState> = {};
  private readonly delivered = { events: new Map<string, Actual[]>(), replies: new Map<string, Actual[]>(), log: new Map<string, Actual[]>(), commands: new Map<string, Actual[]>(), repartition: new Map<string, Actual[]>() };
  private readonly extra = { events: emptySequenceFindings(), replies: emptySequenceFindings(), log: emptySequenceFindings(), commands: emptySequenceFindings(), repartition: emptySequenceFindings(), outcomes: emptySequenceFindings() };
  private readonly eventIds = new EventIds();
  private readonly replyReader = new ReplyReader(this.eventIds);
  /** eventId → where, over the events topic and over the saga log (each must name one record) */
  private readonly eventIdsSeen = new Map<string, string>();
  private readonly logIdsSeen = new Map<string, string>();
  /** good events per aggregate (`Type/id`), by version, first delivery */
  private readonly events = new Map<string, Map<number, SeenEvent>>();
  /** events that concern an order (data.orderId), for the correlate stage: identity per order id */
  private readonly correlated = new Map<string, Set<string>>();
  /** saga log entries per saga id, first delivery per version */
  private readonly logEntries = new Map<string, Map<number, SeenEvent>>();
  private readonly sagaCommands: SagaCommandRecord[] = [];
  /** commandId → where it was seen, for saga commands (each must appear once) */
  private readonly sagaCommandIds = new Map<string, string>();
  /** input partition → offset of its last read_committed record (for the stores' position markers) */
  private readonly lastOffsets = new Map<string, Map<number, bigint>>();
  /** accepted AddStock per SKU (the generator's), accepted PlaceOrders (order ids) */
  private readonly stockAdded = new Map<string, number>();
  private readonly stats: Record<string, number> = { generatorCommands: 0, sagaCommands: 0, retriedCommandIds: 0, badEventsIgnored: 0 };

  constructor(private readonly t: SagaTopics) {
    const cl = (p: string, s: string) => changelogName(t.app, p, s);
    this.kindOfTopic = new Map<string, Kind>([
      [t.orderCommands, 'orders'],
      [t.inventoryCommands, 'inventory'],
      [t.paymentCommands, 'payments'],
    ]);
    this.dlq = {
      orders: new DlqCheck(dlqName(t.app, 'orders'), 'orders'),
      inventory: new DlqCheck(dlqName(t.app, 'inventory'), 'inventory'),
      payments: new DlqCheck(dlqName(t.app, 'payments'), 'payments'),
      saga: new DlqCheck(dlqName(t.app, SAGA), SAGA),
      instances: new DlqCheck(dlqName(t.app, INSTANCES), INSTANCES),
    };
    for (const k of ['orders', 'inventory', 'payments'] as const) {
      this.logs[`${k}/state`] = new ChangelogState(cl(k, 'state'));
      this.logs[`${k}/commands`] = new ChangelogState(cl(k, 'commands'));
    }
    this.logs.sagas = new ChangelogState(cl(INSTANCES, 'sagas'));
    this.logs.deadlines = new ChangelogState(cl(INSTANCES, 'deadlines'));
    this.inputTopics = [t.orderCommands, t.inventoryCommands, t.paymentCommands];
    const internal = [...Object.values(this.dlq).map((d) => d.topic), ...Object.values(this.logs).map((l) => l.topic)];
    this.outputTopics = [t.events, t.replies, t.sagaLog, t.repartition, ...internal];
    // the command topics carry the saga's transactions; the aggregates' command-expiry index is not modelled
    this.transactionalTopics = [...this.outputTopics, ...this.inputTopics, ...(['orders', 'inventory', 'payments'] as const).map((k) => cl(k, 'command-expiry'))];
  }

  private aggregate(kind: Kind, id: string): AggregateModel {
    const k = `${AGGREGATE_TYPE[kind]}/${id}`;
    let a = this.aggregates.get(k);
    if (!a) {
      a = { kind, id, version: 0, state: kind === 'inventory' ? { available: 0 } : {}, replies: new Map(), replySeq: [], occurrences: new Map(), events: [] };
      this.aggregates.set(k, a);
    }
    return a;
  }

  private sample(f: SequenceFindings, s: string): void {
    if (f.samples.length < 8) f.samples.push(s);
  }

  private outcome(s: string): void {
    this.extra.outcomes.wrongValues++;
    this.sample(this.extra.outcomes, s);
  }

  onInput(r: VRecord): void {
    const kind = this.kindOfTopic.get(r.topic)!;
    const offsets = this.lastOffsets.get(r.topic) ?? new Map<number, bigint>();
    offsets.set(r.partition, r.offset);
    this.lastOffsets.set(r.topic, offsets);
    const v = classifyCommand(r, this.t.maxRecordBytes, false);
    countVerdict(this.summary, r, 'bad' in v, 'bad' in v ? `${v.bad}: ${v.why}` : '', BAD_KIND_HEADER);
    if ('bad' in v) return this.dlq[kind].expect(r, v.bad, r.headers[BAD_KIND_HEADER] ?? v.why);
    const c = v.good;
    if (c.commandId.startsWith(GENERATOR_PREFIX)) {
      this.stats.generatorCommands!++;
    } else {
      this.stats.sagaCommands!++;
      const first = this.sagaCommandIds.get(c.commandId);
      if (first !== undefined) {
        this.extra.commands.duplicates++;
        this.sample(this.extra.commands, `commandId ${c.commandId} (${c.commandType} ${c.aggregateId}) again at ${where(r)}, first at ${first}`);
      } else {
        this.sagaCommandIds.set(c.commandId, where(r));
      }
      checkPartition(this.extra.commands, r, this.t.partitions);
      this.sagaCommands.push({ topic: r.topic, key: r.key!.toString('utf8'), command: c, where: where(r) });
    }
    this.apply(kind, c, r);
  }

  private apply(kind: Kind, c: Command, r: VRecord): void {
    const a = this.aggregate(kind, c.aggregateId);
    const k = (a.occurrences.get(c.commandId) ?? 0) + 1;
    a.occurrences.set(c.commandId, k);
    if (k > 1) this.stats.retriedCommandIds!++;
    let reply = a.replies.get(c.commandId);
    if (!reply) {
      if (c.expectedVersion !== undefined && c.expectedVersion !== null && c.expectedVersion !== a.version) {
        reply = { commandId: c.commandId, status: 'conflict', code: 'CONCURRENCY_CONFLICT', aggregateVersion: a.version, events: 0 };
      } else {
        const d = decide(a, c);
        if ('code' in d) {
          reply = { commandId: c.commandId, status: 'rejected', code: d.code, aggregateVersion: a.version, events: 0 };
        } else {
          for (const e of d.events) {
            a.version++;
            evolve(a, e);
            a.events.push({ id: String(a.version), value: expectedEvent(c, r.timestamp, AGGREGATE_TYPE[kind], a.version, e) });
          }
          if (c.commandType === 'AddStock' && c.commandId.startsWith(GENERATOR_PREFIX) && typeof c.data.quantity === 'number') {
            this.stockAdded.set(c.aggregateId, (this.stockAdded.get(c.aggregateId) ?? 0) + c.data.quantity);
          }
          reply = { commandId: c.commandId, status: 'accepted', code: undefined, aggregateVersion: a.version, events: d.events.length };
        }
      }
      a.replies.set(c.commandId, reply);
    }
    a.replySeq.push({ id: `${c.commandId}#${k}`, value: replyValue(reply) });
  }

  private deliver(kind: keyof SagaModel['delivered'], key: string, r: VRecord, id: string, value: string): void {
    const list = this.delivered[kind].get(key) ?? [];
    list.push({ id, value, where: at(r) });
    this.delivered[kind].set(key, list);
  }

  private noteCorrelated(orderId: unknown, identity: string): void {
    if (!((typeof orderId === 'string' && orderId !== '') || typeof orderId === 'number')) return;
    const id = String(orderId);
    const s = this.correlated.get(id) ?? new Set<string>();
    s.add(identity);
    this.correlated.set(id, s);
  }

  onOutput(r: VRecord): void {
    switch (r.topic) {
      case this.t.events:
        return this.onEvent(r);
      case this.t.replies: {
        checkPartition(this.extra.replies, r, this.t.partitions);
        const reply = this.replyReader.read(r, this.extra.replies);
        const v = parseValue(r);
        // replies of the three aggregates share the topic; their keys (order, SKU, pay-order) do not collide
        return this.deliver('replies', `${String(v.aggregateId)}`, r, reply.id, reply.value);
      }
      case this.t.sagaLog: {
        checkPartition(this.extra.log, r, this.t.partitions);
        const key = r.key?.toString('utf8') ?? '<null>';
        const v = parseValue(r);
        const first = this.logIdsSeen.get(String(v.eventId));
        if (first !== undefined) {
          this.extra.log.duplicates++;
          this.sample(this.extra.log, `log eventId ${String(v.eventId)} again at ${where(r)}, first at ${first}`);
        } else {
          this.logIdsSeen.set(String(v.eventId), where(r));
        }
        const version = v.aggregateVersion as number;
        const m = this.logEntries.get(key) ?? new Map<number, SeenEvent>();
        if (!m.has(version)) m.set(version, { value: v, ts: r.timestamp, where: where(r) });
        this.logEntries.set(key, m);
        const { eventId: _id, ...rest } = v;
        return this.deliver('log', key, r, String(version), canonical(rest));
      }
      case this.t.repartition: {
        checkPartition(this.extra.repartition, r, this.t.partitions);
        const key = r.key?.toString('utf8') ?? '<null>';
        const v = parseValue(r);
        return this.deliver('repartition', key, r, identityOf(v), canonical(v));
      }
      default:
        for (const d of Object.values(this.dlq)) if (d.topic === r.topic) return d.onRecord(r);
        for (const l of Object.values(this.logs)) if (l.topic === r.topic) return l.onRecord(r);
    }
  }

  private onEvent(r: VRecord): void {
    const v = classifyEvent(r, this.t.maxRecordBytes, MAX_EVENT_VERSION);
    if ('bad' in v) {
      countVerdict(this.summary, r, true, `${v.bad}: ${v.why}`, BAD_KIND_HEADER);
      return this.dlq.saga.expect(r, v.bad, r.headers[BAD_KIND_HEADER] ?? v.why);
    }
    const e = v.good;
    const kind = KIND_OF_TYPE.get(e.aggregateType);
    if (!MAX_EVENT_VERSION.has(e.eventType) || !kind) {
      // a type no aggregate writes (the generator's): the saga's flow ignores it; it still goes through the
      // correlate stage when it names an order
      countVerdict(this.summary, r, true, `ignored: ${e.eventType}`, BAD_KIND_HEADER);
      this.stats.badEventsIgnored!++;
      this.noteCorrelated(e.data.orderId, identityOf(e as unknown as Obj));
      return;
    }
    countVerdict(this.summary, r, false, '', BAD_KIND_HEADER);
    checkPartition(this.extra.events, r, this.t.partitions);
    const value = parseValue(r);
    const key = `${e.aggregateType}/${e.aggregateId}`;
    const first = this.eventIdsSeen.get(e.eventId);
    if (first !== undefined && first !== `${key}@${e.aggregateVersion}`) {
      this.extra.events.wrongValues++;
      this.sample(this.extra.events, `eventId ${e.eventId} names two events: ${key}@${e.aggregateVersion} at ${where(r)} and ${first}`);
    } else {
      this.eventIdsSeen.set(e.eventId, `${key}@${e.aggregateVersion}`);
    }
    this.eventIds.delivered(e.aggregateId, e.aggregateVersion, e.eventId);
    const m = this.events.get(key) ?? new Map<number, SeenEvent>();
    if (!m.has(e.aggregateVersion)) m.set(e.aggregateVersion, { value, ts: r.timestamp, where: where(r) });
    this.events.set(key, m);
    this.noteCorrelated(e.data.orderId, identityOf(value));
    const { eventId: _id, ...rest } = value;
    this.deliver('events', key, r, String(e.aggregateVersion), canonical(rest));
  }

  finish(): ModelFindings {
    const out = this.extra;
    const stateModel: Record<Kind, Map<string, string>> = { orders: new Map(), inventory: new Map(), payments: new Map() };
    const commandsModel: Record<Kind, Map<string, string>> = { orders: new Map(), inventory: new Map(), payments: new Map() };
    for (const [key, a] of this.aggregates) {
      compareSequence(out.events, key, a.events, this.delivered.events.get(key) ?? []);
      compareSequence(out.replies, a.id, a.replySeq, this.delivered.replies.get(a.id) ?? []);
      if (a.version > 0) stateModel[a.kind].set(a.id, canonical({ version: a.version, state: a.state }));
      // keyed by [aggregate key, commandId]: a commandId is one aggregate's (docs/wire-formats.md)
      for (const [commandId, reply] of a.replies) commandsModel[a.kind].set(JSON.stringify([a.id, commandId]), storedReplyValue(reply, a.id));
    }
    const replyKeys = new Set([...this.aggregates.values()].map((a) => a.id));
    for (const [key, actual] of this.delivered.events) if (!this.aggregates.has(key)) compareSequence(out.events, key, [], actual);
    for (const [key, actual] of this.delivered.replies) if (!replyKeys.has(key)) compareSequence(out.replies, key, [], actual);
    this.eventIds.check(out.replies);

    const sagas = this.checkSagas();
    this.checkRepartition();
    this.checkStock();

    const stores: StoreFindings[] = [];
    for (const k of ['orders', 'inventory', 'payments'] as const) {
      const state = this.logs[`${k}/state`]!;
      const commands = this.logs[`${k}/commands`]!;
      const input = k === 'orders' ? this.t.orderCommands : k === 'inventory' ? this.t.inventoryCommands : this.t.paymentCommands;
      const s1 = compareStore(`${k} state`, state.topic, state.values, stateModel[k]);
      const s2 = compareStore(`${k} commands`, commands.topic, storedReplies(commands), commandsModel[k]);
      checkPositionedPast(s1, state, input, this.lastOffsets.get(input));
      checkPositionedPast(s2, commands, input, this.lastOffsets.get(input));
      stores.push(s1, s2);
    }
    const sagasStore = compareStore('order-fulfilment sagas', this.logs.sagas!.topic, this.logs.sagas!.values, sagas.sagas);
    const deadlinesStore = compareStore('order-fulfilment deadlines', this.logs.deadlines!.topic, this.logs.deadlines!.values, sagas.deadlines);
    stores.push(sagasStore, deadlinesStore);

    const stats: Record<string, number> = { ...this.stats, ...sagas.stats, aggregates: this.aggregates.size };
    for (const a of this.aggregates.values()) {
      for (const reply of a.replies.values()) {
        const s = reply.status === 'rejected' ? `rejected ${reply.code}` : reply.status;
        stats[s] = (stats[s] ?? 0) + 1;
      }
      stats[`${a.kind}Events`] = (stats[`${a.kind}Events`] ?? 0) + a.events.length;
    }
    const commandTopics = `${this.t.orderCommands}, ${this.t.inventoryCommands}, ${this.t.paymentCommands} (saga commands)`;
    return {
      stats,
      input: this.summary,
      outputs: {
        [this.t.events]: out.events,
        [this.t.replies]: out.replies,
        [this.t.sagaLog]: out.log,
        [commandTopics]: out.commands,
        [this.t.repartition]: out.repartition,
        'saga outcomes (stock, payments, orders)': out.outcomes,
      },
      stores,
      dlq: Object.values(this.dlq).map((d) => d.finish()),
    };
  }

  /** The events of one aggregate in version order. */
  private eventsOf(type: string, id: string): Obj[] {
    const m = this.events.get(`${type}/${id}`);
    return m ? [...m.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => e.value) : [];
  }

  /**
   * Part 2 and most of part 3: per saga instance the expected log, commands and stored state, from the events topic
   * (and, for a timeout, from the log itself); then what the aggregates ended with.
   */
  private checkSagas(): { sagas: Map<string, string>; deadlines: Map<string, string>; stats: Record<string, number> } {
    const out = this.extra;
    const sagas = new Map<string, string>();
    const deadlines = new Map<string, string>();
    const stats: Record<string, number> = { sagasStarted: 0, sagasCompleted: 0, sagasCompensated: 0, sagasFailed: 0, sagasTimedOut: 0, sagasRunning: 0, ordersDeclinedOverLimit: 0 };
    // the saga's commands per order id, as written
    const actualCommands = new Map<string, Actual[]>();
    for (const s of this.sagaCommands) {
      const c = s.command;
      const orderId = c.commandType === 'ConfirmOrder' || c.commandType === 'CancelOrder' ? c.aggregateId : String(c.data.orderId);
      const list = actualCommands.get(orderId) ?? [];
      list.push({ id: c.commandType, value: commandValue(s.topic, s.key, c), where: s.where });
      actualCommands.set(orderId, list);
    }
    // every order id whose PlaceOrder was accepted
    const placedOrders = [...this.aggregates.values()].filter((a) => a.kind === 'orders' && a.events.length > 0).map((a) => a.id);
    const topicOf = { order: this.t.orderCommands, inventory: this.t.inventoryCommands, payment: this.t.paymentCommands };

    for (const x of placedOrders) {
      const placed = this.events.get(`Order/${x}`)?.get(1);
      if (!placed || placed.value.eventType !== 'OrderPlaced') continue; // lost: found by the events check
      stats.sagasStarted!++;
      const start = placed.value;
      const d = start.data as Obj;
      const correlationId = (start.correlationId as string | undefined) ?? (start.eventId as string);
      const log: Expected[] = [];
      const commands: Expected[] = [];
      const actualLog = this.logEntries.get(x) ?? new Map<number, SeenEvent>();
      const entry = (eventType: string, data: Obj, causation: unknown, ts: number) => {
        const version = log.length + 1;
        const e: Obj = { eventType, eventVersion: 1, aggregateType: SAGA, aggregateId: x, aggregateVersion: version, timestamp: new Date(ts).toISOString(), correlationId, data };
        if (typeof causation === 'string') e.causationId = causation;
        log.push({ id: String(version), value: canonical(e) });
      };
      const command = (topic: string, type: string, aggregateId: string, data: Obj, trigger: Obj | undefined, ts: number, causation: unknown) => {
        const c: Obj = { commandType: type, aggregateId, timestamp: new Date(ts).toISOString(), correlationId, data };
        if (typeof causation === 'string') c.causationId = causation;
        if (trigger && typeof trigger.userId === 'string' && trigger.userId) c.userId = trigger.userId;
        commands.push({ id: type, value: canonical({ topic, key: aggregateId, ...c }) });
      };
      const seen: Record<string, number> = { [`Order/${x}`]: 1 };
      let status = 'running';
      let step = 0;
      let reactions = 1;
      let lastTs = placed.ts;
      /** the current step's deadline, as far as it can be known: a wall-clock deadline counts from when its reaction
       * ran, not from a record time; only an instance still running at the end has one, and that fails anyway */
      let deadlineAt = placed.ts + TIMEOUT_MS;
      const sku = String(d.sku);
      const pay = `pay-${x}`;
      entry('SagaStarted', { status: 'running', trigger: 'OrderPlaced' }, start.eventId, placed.ts);
      command(topicOf.inventory, 'ReserveStock', sku, defined({ orderId: x, quantity: d.quantity }), start, placed.ts, start.eventId);

      // a timeout, if the log has one: which step, and its entry
      const timedOut = [...actualLog.values()].find((e) => e.value.eventType === 'SagaTimedOut');
      const timeoutAt = (s: number) => timedOut && (timedOut.value.data as Obj | undefined)?.deadline === STEPS[s];
      const timeout = (s: number) => {
        const t = timedOut!;
        const reason = `step "${STEPS[s]}" timed out`;
        const v = log.length + 1;
        // the deadline fired on the wall clock, and was due timeoutMs after the reaction that set it ran (on the wall
        // clock too): its entry's time, due time and eventId are taken as written
        const e: Obj = { eventType: 'SagaTimedOut', eventVersion: 1, aggregateType: SAGA, aggregateId: x, aggregateVersion: v, timestamp: t.value.timestamp, correlationId, data: { status: 'compensated', deadline: STEPS[s], at: (t.value.data as Obj | undefined)?.at } };
        log.push({ id: String(v), value: canonical(e) });
        const ts = Date.parse(String(t.value.timestamp));
        entry('SagaFailed', { status: 'compensated', reason, compensating: true }, t.value.eventId, ts);
        entry('SagaCompensated', { status: 'compensated' }, t.value.eventId, ts);
        if (s >= 1) command(topicOf.payment, 'RefundPayment', pay, { orderId: x }, undefined, ts, t.value.eventId);
        command(topicOf.inventory, 'ReleaseStock', sku, defined({ orderId: x, quantity: d.quantity }), undefined, ts, t.value.eventId);
        command(topicOf.order, 'CancelOrder', x, { reason }, undefined, ts, t.value.eventId);
        status = 'compensated';
        reactions++;
        lastTs = ts;
        stats.sagasTimedOut!++;
      };

      const byOrder = (type: string, id: string, types: string[]) => this.eventsOf(type, id).filter((e) => types.includes(e.eventType as string) && (e.data as Obj).orderId === x);
      const tsOf = (e: Obj) => this.events.get(`${e.aggregateType as string}/${e.aggregateId as string}`)!.get(e.aggregateVersion as number)!.ts;
      // step 0: reserve-stock
      const stock = byOrder('Stock', sku, ['StockReserved', 'StockUnavailable'])[0];
      if (timeoutAt(0)) timeout(0);
      else if (stock) {
        const ts = tsOf(stock);
        seen[`Stock/${sku}`] = stock.aggregateVersion as number;
        reactions++;
        lastTs = ts;
        if (stock.eventType === 'StockUnavailable') {
          const reason = 'StockUnavailable at step "reserve-stock"';
          status = 'failed';
          entry('SagaFailed', { status, reason, compensating: false }, stock.eventId, ts);
          command(topicOf.order, 'CancelOrder', x, { reason }, stock, ts, stock.eventId);
        } else {
          step = 1;
          deadlineAt = ts + TIMEOUT_MS;
          entry('SagaStepCompleted', { status, step: 'reserve-stock' }, stock.eventId, ts);
          command(topicOf.payment, 'ChargePayment', pay, defined({ orderId: x, amount: d.amount }), stock, ts, stock.eventId);
          // step 1: charge-payment
          const payment = byOrder('Payment', pay, ['PaymentCharged', 'PaymentDeclined'])[0];
          if (timeoutAt(1)) timeout(1);
          else if (payment) {
            const ts2 = tsOf(payment);
            seen[`Payment/${pay}`] = payment.aggregateVersion as number;
            reactions++;
            lastTs = ts2;
            if (payment.eventType === 'PaymentDeclined') {
              const reason = 'PaymentDeclined at step "charge-payment"';
              status = 'compensated';
              entry('SagaFailed', { status, reason, compensating: true }, payment.eventId, ts2);
              entry('SagaCompensated', { status }, payment.eventId, ts2);
              command(topicOf.inventory, 'ReleaseStock', sku, defined({ orderId: x, quantity: d.quantity }), payment, ts2, payment.eventId);
              command(topicOf.order, 'CancelOrder', x, { reason }, payment, ts2, payment.eventId);
            } else {
              step = 2;
              entry('SagaStepCompleted', { status, step: 'charge-payment' }, payment.eventId, ts2);
              command(topicOf.order, 'ConfirmOrder', x, {}, payment, ts2, payment.eventId);
              // step 2: confirm-order (no timeout)
              const confirmed = byOrder('Order', x, ['OrderConfirmed'])[0];
              if (confirmed) {
                const ts3 = tsOf(confirmed);
                seen[`Order/${x}`] = confirmed.aggregateVersion as number;
                reactions++;
                lastTs = ts3;
                step = 3;
                status = 'completed';
                entry('SagaStepCompleted', { status, step: 'confirm-order' }, confirmed.eventId, ts3);
                entry('SagaCompleted', { status }, confirmed.eventId, ts3);
              }
            }
          }
        }
      }
      if (timedOut && status !== 'compensated') this.outcome(`saga ${x}: SagaTimedOut for ${String((timedOut.value.data as Obj | undefined)?.deadline)} at ${timedOut.where}, but the instance was not at that step (${STEPS[step] ?? 'done'})`);
      if (status === 'completed') stats.sagasCompleted!++;
      else if (status === 'compensated') stats.sagasCompensated!++;
      else if (status === 'failed') stats.sagasFailed!++;
      else stats.sagasRunning!++;

      compareSequence(out.log, x, log, this.delivered.log.get(x) ?? []);
      const actual = (actualCommands.get(x) ?? []).slice();
      const order = new Map(commands.map((c, i) => [c.id, i]));
      actual.sort((a, b) => (order.get(a.id) ?? 99) - (order.get(b.id) ?? 99));
      compareSequence(out.commands, x, commands, actual);
      actualCommands.delete(x);

      const ended = status !== 'running';
      sagas.set(
        x,
        canonical({
          status,
          state: { step, start },
          reactions,
          logVersion: log.length,
          seen,
          deadline: ended || step >= 2 ? null : { name: STEPS[step], at: deadlineAt },
          correlationId,
          startedAt: new Date(placed.ts).toISOString(),
          updatedAt: new Date(lastTs).toISOString(),
        }),
      );
      if (!ended && step < 2) deadlines.set(`${String(deadlineAt).padStart(15, '0')}:${x}`, canonical(x));
      if (!ended) this.outcome(`saga ${x} never ended: it is at step ${STEPS[step]} (log ${log.length} entries)`);
      this.checkOutcome(x, status, start, stats);
    }
    // commands and log entries of sagas no accepted PlaceOrder started
    for (const [x, actual] of actualCommands) compareSequence(out.commands, x, [], actual);
    const placedSet = new Set(placedOrders);
    for (const [x, actual] of this.delivered.log) if (!placedSet.has(x)) compareSequence(out.log, x, [], actual);
    return { sagas, deadlines, stats };
  }

  /** Part 3: what a saga's end means for the order, the payment and the stock, as the aggregates' stores hold them. */
  private checkOutcome(x: string, status: string, start: Obj, stats: Record<string, number>): void {
    const d = start.data as Obj;
    const sku = String(d.sku);
    const pay = `pay-${x}`;
    const stock = this.eventsOf('Stock', sku).filter((e) => (e.data as Obj).orderId === x);
    const reserved = stock.filter((e) => e.eventType === 'StockReserved');
    const released = stock.filter((e) => e.eventType === 'StockReleased');
    const unavailable = stock.filter((e) => e.eventType === 'StockUnavailable');
    const payments = this.eventsOf('Payment', pay);
    const orderState = this.stored('orders', x);
    const paymentState = this.stored('payments', pay);
    const problems: string[] = [];
    const logTypes = [...(this.logEntries.get(x)?.values() ?? [])].map((e) => e.value.eventType as string);
    const count = (t: string) => logTypes.filter((y) => y === t).length;
    if (count('SagaStarted') !== 1) problems.push(`${count('SagaStarted')} SagaStarted`);
    const terminal = count('SagaCompleted') + count('SagaFailed');
    if (terminal !== 1 || count('SagaCompensated') > count('SagaFailed')) problems.push(`log ${logTypes.join(',')}: not one end`);
    const declined = payments.some((e) => e.eventType === 'PaymentDeclined');
    if (payments.length && declined !== gt(d.amount, PAYMENT_LIMIT)) problems.push(`amount ${String(d.amount)} but payment ${payments.map((e) => e.eventType).join(',')}`);
    if (declined) stats.ordersDeclinedOverLimit!++;
    switch (status) {
      case 'completed':
        if (orderState?.status !== 'CONFIRMED') problems.push(`completed, order ${String(orderState?.status)}`);
        if (paymentState?.status !== 'CHARGED') problems.push(`completed, payment ${String(paymentState?.status)}`);
        if (reserved.length !== 1 || released.length !== 0) problems.push(`completed, stock reserved ${reserved.length}× and released ${released.length}×`);
        break;
      case 'compensated':
        if (orderState?.status !== 'CANCELLED') problems.push(`compensated, order ${String(orderState?.status)}`);
        if (reserved.length !== 1 || released.length !== 1) problems.push(`compensated, stock reserved ${reserved.length}× and released ${released.length}×`);
        if (released.length === 1 && (released[0]!.data as Obj).quantity !== d.quantity) problems.push(`released ${String((released[0]!.data as Obj).quantity)}, ordered ${String(d.quantity)}`);
        if (count('SagaTimedOut') === 0) {
          if (!declined) problems.push('compensated without PaymentDeclined');
          if (payments.some((e) => e.eventType === 'PaymentRefunded')) problems.push('compensated after PaymentDeclined, yet refunded');
        }
        break;
      case 'failed':
        if (orderState?.status !== 'CANCELLED') problems.push(`failed, order ${String(orderState?.status)}`);
        if (unavailable.length !== 1 || reserved.length || released.length) problems.push(`failed, stock unavailable ${unavailable.length}×, reserved ${reserved.length}×, released ${released.length}×`);
        if (payments.length) problems.push(`failed at reserve-stock, yet payment events ${payments.map((e) => e.eventType).join(',')}`);
        break;
    }
    if (problems.length) this.outcome(`saga ${x}: ${problems.join('; ')}`);
  }

  /** A store's value for an aggregate, as its state changelog holds it. */
  private stored(kind: Kind, id: string): Obj | undefined {
    const v = this.logs[`${kind}/state`]!.values.get(id);
    if (v === undefined) return undefined;
    const o = JSON.parse(v) as unknown;
    return isObj(o) && isObj(o.state) ? o.state : undefined;
  }

  /** Stock conservation per SKU, and `available` never negative in the event stream. */
  private checkStock(): void {
    const skus = new Set<string>([...this.stockAdded.keys()]);
    for (const key of this.events.keys()) if (key.startsWith('Stock/')) skus.add(key.slice('Stock/'.length));
    for (const sku of skus) {
      let available = 0;
      const held = new Map<string, number>();
      for (const e of this.eventsOf('Stock', sku)) {
        const d = e.data as Obj;
        const q = d.quantity as number;
        const order = String(d.orderId);
        if (e.eventType === 'StockAdded') available += q;
        else if (e.eventType === 'StockReserved') {
          available -= q;
          held.set(order, (held.get(order) ?? 0) + q);
        } else if (e.eventType === 'StockReleased') {
          available += q;
          held.set(order, (held.get(order) ?? 0) - q);
        } else if (e.eventType === 'StockUnavailable' && !(d.available === available && available < q)) {
          this.outcome(`${sku}@${String(e.aggregateVersion)}: StockUnavailable for ${q} with available ${String(d.available)}; the stream has ${available}`);
        }
        if (available < 0) this.outcome(`${sku}@${String(e.aggregateVersion)}: available ${available} after ${String(e.eventType)}`);
        if ((held.get(order) ?? 0) < 0) this.outcome(`${sku}@${String(e.aggregateVersion)}: order ${order} released more than it reserved`);
      }
      const heldTotal = [...held.values()].reduce((a, b) => a + b, 0);
      const expected = (this.stockAdded.get(sku) ?? 0) - heldTotal;
      const stored = this.stored('inventory', sku)?.available;
      if (stored !== expected) this.outcome(`${sku}: available ${String(stored)} in the inventory store; added ${this.stockAdded.get(sku) ?? 0}, held by orders ${heldTotal}`);
    }
  }

  /** The correlate stage: each event that names an order exactly once on the repartition topic, under that order. */
  private checkRepartition(): void {
    const f = this.extra.repartition;
    for (const [orderId, ids] of this.correlated) {
      const expected = [...ids].map((id) => ({ id, value: '' }));
      const actual = (this.delivered.repartition.get(orderId) ?? []).map((a) => ({ ...a, value: '' }));
      const order = new Map(expected.map((e, i) => [e.id, i]));
      actual.sort((a, b) => (order.get(a.id) ?? 1e9) - (order.get(b.id) ?? 1e9));
      compareSequence(f, orderId, expected, actual);
    }
    for (const [orderId, actual] of this.delivered.repartition) if (!this.correlated.has(orderId)) compareSequence(f, orderId, [], actual);
  }
}

/** An event's identity on the repartition topic: its aggregate and version (a generator's bad event: its eventId). */
function identityOf(v: Obj): string {
  return KIND_OF_TYPE.has(v.aggregateType as string) && MAX_EVENT_VERSION.has(v.eventType as string) ? `${String(v.aggregateType)}/${String(v.aggregateId)}@${String(v.aggregateVersion)}` : `other:${String(v.eventId)}`;
}

/** A saga command as the model compares it: where it went and what it says, without its commandId. */
function commandValue(topic: string, key: string, c: Command): string {
  const { commandId: _id, ...rest } = c as unknown as Obj;
  return canonical({ topic, key, ...rest });
}
