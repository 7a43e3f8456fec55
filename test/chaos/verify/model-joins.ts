/**
 * Model of the windows-and-joins workload (test/chaos/workloads/joins.ts), written from docs/windows.md and
 * docs/joins.md, not from the code:
 *
 * Admission (both processors read the orders topic): RECORD_TOO_LARGE, KEY_MISSING, DESERIALIZATION_FAILED,
 * ENVELOPE_INVALID as for every event processor (verify/envelopes.ts), but neither checks that the key is the
 * aggregate id (a key-mismatch record is good, under its record key) and neither has a maximum eventVersion. Events
 * of other types than OrderPlaced (PaymentCharged on the right side of the join) are ignored. The workload marks
 * such records `chaos.unusual`, not `chaos.bad`.
 *
 * `spend` (window, tumbling hours, graceMs 10 min, retention two days, emit update, late: dlq): per input partition,
 * stream time is the highest time of the orders windowed so far; an order whose hour ends more than the grace before
 * it is late (dead-lettered as WINDOW_RECORD_LATE) and does not move it. Every other order adds 1 and its amount to
 * its customer's hour and sends {key, start, end, orders, amount}: per key, in input order, the `orders` of an hour run
 * 1..n (the identity of each result). Store `windows`: every hour of the run (none expires within two days).
 *
 * `paid` (stream-stream join, right within [left, left + 10 min], graceMs two days): every pair of an order and a
 * payment of the same customer within the window, once: {order, payment, amount}. Which side a task reads first
 * depends on timing, so per key the pairs are compared as a set. Buffers `left-buffer` and `right-buffer`: every
 * joined event (nothing is late or expires within two days), keyed `<key>@<time>@<offset>@<topic>`.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import { canonical, checkPartition, compareSequence, compareStore, emptySequenceFindings, type Actual, type Expected, type SequenceFindings } from './compare.ts';
import { DlqCheck } from './dlq.ts';
import { classifyEvent, isObj, type Event } from './envelopes.ts';
import { countVerdict, emptyInputSummary, type ModelCheck, type ModelFindings, type Verdict } from './model.ts';
import type { VRecord } from './read-topics.ts';
import { ChangelogState } from './store.ts';
import { at, BAD_KIND_HEADER, changelogName, dlqName } from './wire.ts';

/** Header the workload marks corpus records with that windows and joins accept (workloads/joins.ts). */
const UNUSUAL_KIND_HEADER = 'chaos.unusual';

export interface JoinsTopics {
  app: string;
  orders: string;
  payments: string;
  spend: string;
  paid: string;
  partitions: number;
  maxRecordBytes: number;
}

const HOUR = 3_600_000;
const GRACE = 600_000;
const AFTER = 600_000;
const pad15 = (t: number) => String(t).padStart(15, '0');
const iso = (t: number) => new Date(t).toISOString();

interface Side {
  key: string;
  time: number;
  event: Event;
}

export class JoinsModel implements ModelCheck {
  readonly workload = 'joins';
  readonly inputTopics: string[];
  readonly outputTopics: string[];
  readonly transactionalTopics: string[];
  private readonly summary = emptyInputSummary();
  private readonly spendDlq: DlqCheck;
  private readonly paidDlq: DlqCheck;
  private readonly windowsLog: ChangelogState;
  private readonly buffers: { left: ChangelogState; right: ChangelogState };
  /** orders-topic partition → the window's stream time */
  private readonly streamTime = new Map<number, number>();
  /** `<key>@<start>` → the hour's aggregate */
  private readonly windows = new Map<string, { key: string; start: number; orders: number; amount: number }>();
  private readonly spendExpected = new Map<string, Expected[]>();
  private readonly spendActual = new Map<string, Actual[]>();
  private readonly paidActual = new Map<string, Actual[]>();
  private readonly sides: { left: Side[]; right: Side[] } = { left: [], right: [] };
  private readonly bufferModel = { left: new Map<string, string>(), right: new Map<string, string>() };
  private readonly placement = emptySequenceFindings();
  private readonly stats: Record<string, number> = { late: 0, ignored: 0, keyMismatchJoined: 0, unusual: 0 };

  constructor(private readonly t: JoinsTopics) {
    const spendDlq = dlqName(t.app, 'spend');
    const paidDlq = dlqName(t.app, 'paid');
    const windows = changelogName(t.app, 'spend', 'windows');
    const left = changelogName(t.app, 'paid', 'left-buffer');
    const right = changelogName(t.app, 'paid', 'right-buffer');
    this.inputTopics = [t.orders, t.payments];
    this.outputTopics = [t.spend, t.paid, spendDlq, paidDlq, windows, left, right];
    this.transactionalTopics = [...this.outputTopics];
    this.spendDlq = new DlqCheck(spendDlq, 'spend');
    this.paidDlq = new DlqCheck(paidDlq, 'paid');
    this.windowsLog = new ChangelogState(windows);
    this.buffers = { left: new ChangelogState(left), right: new ChangelogState(right) };
  }

  /** An event of the orders or payments topic as the window and the join admit it. */
  private classify(r: VRecord): Verdict<Event> {
    const v = classifyEvent(r, this.t.maxRecordBytes, new Map());
    if (!('bad' in v) || v.bad !== 'KEY_MISMATCH') return v;
    // windows and joins take the record key as it is
    this.stats.keyMismatchJoined!++;
    return { good: JSON.parse(r.value!.toString('utf8')) as Event };
  }

  onInput(r: VRecord): void {
    const v = this.classify(r);
    countVerdict(this.summary, r, 'bad' in v, 'bad' in v ? `${v.bad}: ${v.why}` : '', BAD_KIND_HEADER);
    // a corpus kind windows and joins accept (workloads/joins.ts): processed, or ignored, like a good record
    if (r.headers[UNUSUAL_KIND_HEADER] !== undefined) this.stats.unusual!++;
    if ('bad' in v) {
      const kind = r.headers[BAD_KIND_HEADER] ?? v.why;
      this.spendDlq.expect(r, v.bad, kind);
      this.paidDlq.expect(r, v.bad, kind);
      return;
    }
    const e = v.good;
    const key = r.key!.toString('utf8');
    const side = r.topic === this.t.orders ? 'left' : 'right';
    const wanted = side === 'left' ? 'OrderPlaced' : 'PaymentCharged';
    if (e.eventType !== wanted) {
      this.stats.ignored!++;
      return;
    }
    const time = Date.parse(e.timestamp);
    if (!Number.isFinite(time) || time < 0) {
      this.spendDlq.expect(r, 'ENVELOPE_INVALID', 'time');
      this.paidDlq.expect(r, 'ENVELOPE_INVALID', 'time');
      return;
    }
    // the join: every joined event is buffered
    this.sides[side].push({ key, time, event: e });
    this.bufferModel[side].set(`${key}@${pad15(time)}@${String(r.offset).padStart(20, '0')}@${r.topic}`, canonical(e));
    if (side === 'right') return;

    // the window
    const s = this.streamTime.get(r.partition);
    const start = Math.floor(time / HOUR) * HOUR;
    if (s !== undefined && start + HOUR + GRACE <= s) {
      this.stats.late!++;
      this.spendDlq.expect(r, 'WINDOW_RECORD_LATE', 'late');
      return;
    }
    this.streamTime.set(r.partition, Math.max(s ?? -1, time));
    const wk = `${key}@${pad15(start)}`;
    const w = this.windows.get(wk) ?? { key, start, orders: 0, amount: 0 };
    w.orders++;
    w.amount += isObj(e.data) && typeof e.data.amount === 'number' ? e.data.amount : 0;
    this.windows.set(wk, w);
    const list = this.spendExpected.get(key) ?? [];
    list.push({ id: `${iso(start)}/${w.orders}`, value: canonical({ key, start: iso(start), end: iso(start + HOUR), orders: w.orders, amount: w.amount }) });
    this.spendExpected.set(key, list);
  }

  onOutput(r: VRecord): void {
    if (r.topic === this.spendDlq.topic) return this.spendDlq.onRecord(r);
    if (r.topic === this.paidDlq.topic) return this.paidDlq.onRecord(r);
    if (r.topic === this.windowsLog.topic) return this.windowsLog.onRecord(r);
    if (r.topic === this.buffers.left.topic) return this.buffers.left.onRecord(r);
    if (r.topic === this.buffers.right.topic) return this.buffers.right.onRecord(r);
    const key = r.key?.toString('utf8') ?? '<null>';
    let value: Record<string, unknown> = {};
    try {
      value = (JSON.parse(r.value?.toString('utf8') ?? 'null') as Record<string, unknown> | null) ?? {};
    } catch {
      // an unreadable output counts as a wrong value
    }
    checkPartition(this.placement, r, this.t.partitions);
    if (r.topic === this.t.spend) {
      const list = this.spendActual.get(key) ?? [];
      list.push({ id: `${String(value.start)}/${String(value.orders)}`, value: canonical(value), where: at(r) });
      this.spendActual.set(key, list);
    } else {
      const list = this.paidActual.get(key) ?? [];
      list.push({ id: `${String(value.order)}|${String(value.payment)}`, value: canonical(value), where: at(r) });
      this.paidActual.set(key, list);
    }
  }

  finish(): ModelFindings {
    const spend: SequenceFindings = emptySequenceFindings();
    for (const [key, expected] of this.spendExpected) compareSequence(spend, key, expected, this.spendActual.get(key) ?? []);
    for (const [key, actual] of this.spendActual) if (!this.spendExpected.has(key)) compareSequence(spend, key, [], actual);

    // the join's pairs, per key, as a set: the expected ones in the order they were delivered
    const pairs = new Map<string, Expected[]>();
    for (const l of this.sides.left) {
      for (const p of this.sides.right) {
        if (p.key !== l.key || p.time < l.time || p.time > l.time + AFTER) continue;
        const order = (l.event.data as { orderId?: unknown }).orderId;
        const { paymentId, amount } = p.event.data as { paymentId?: unknown; amount?: unknown };
        const list = pairs.get(l.key) ?? [];
        list.push({ id: `${String(order)}|${String(paymentId)}`, value: canonical({ order, payment: paymentId, amount }) });
        pairs.set(l.key, list);
      }
    }
    const paid: SequenceFindings = emptySequenceFindings();
    for (const [key, expected] of pairs) {
      const actual = this.paidActual.get(key) ?? [];
      // the first delivery of each id (a duplicate comes later and is counted as one)
      const index = new Map<string, number>();
      actual.forEach((a, i) => index.has(a.id) || index.set(a.id, i));
      const ordered = [...expected].sort((x, y) => (index.get(x.id) ?? Infinity) - (index.get(y.id) ?? Infinity));
      compareSequence(paid, key, ordered, actual);
    }
    for (const [key, actual] of this.paidActual) if (!pairs.has(key)) compareSequence(paid, key, [], actual);
    spend.wrongValues += this.placement.wrongValues;
    spend.samples.push(...this.placement.samples);

    const windowModel = new Map(
      [...this.windows].map(([k, w]) => [k, canonical({ key: w.key, start: w.start, end: w.start + HOUR, aggregate: { orders: w.orders, amount: w.amount } })]),
    );
    const stores = [
      compareStore('windows', this.windowsLog.topic, this.windowsLog.values, windowModel),
      compareStore('left-buffer', this.buffers.left.topic, this.buffers.left.values, this.bufferModel.left),
      compareStore('right-buffer', this.buffers.right.topic, this.buffers.right.values, this.bufferModel.right),
    ];
    const stats = {
      ...this.stats,
      windows: this.windows.size,
      windowUpdates: spend.expected,
      pairs: paid.expected,
      orders: this.sides.left.length,
      payments: this.sides.right.length,
    };
    return {
      input: this.summary,
      outputs: { [this.t.spend]: spend, [this.t.paid]: paid },
      stores,
      dlq: [this.spendDlq.finish(), this.paidDlq.finish()],
      stats,
    };
  }
}
