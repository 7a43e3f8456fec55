/**
 * Model of the event-sourcing workload, from docs/wire-formats.md, DESIGN §6-§8 and the bank rules (not from code):
 * an aggregate `accounts` (commands → events + replies; stores `state` and `commands`) and a projection `account-view`
 * (events → views; store `view`).
 *
 * Which records are dead letters: envelopes.ts (the bank's aggregate is partitioned by aggregate), with the
 * projections' maxEventVersion Deposited 2 (read through the upcaster 1 → 2), the other types 1; an event type
 * without a rule is refused as EVENT_TYPE_UNKNOWN.
 *
 * Good commands, per account in input order: a commandId seen before gets the first reply again (no events); an
 * expectedVersion (not null) other than the version gets `conflict` (code CONCURRENCY_CONFLICT); else the bank rules:
 * OpenAccount (ALREADY_OPEN, INVALID_OWNER) → AccountOpened{owner}; Deposit (NOT_OPEN, INVALID_AMOUNT: not an integer
 * 1..1,000,000) → Deposited{amount}; Withdraw (NOT_OPEN, INVALID_AMOUNT, INSUFFICIENT_FUNDS) → Withdrawn{amount};
 * CloseAccount (NOT_OPEN) → AccountClosed{balance: the balance paid out}, after which the account is not open, has no
 * owner and a balance of 0, and may be opened again; other types UNKNOWN_COMMAND; a rejection is `rejected` with that
 * code. Events carry aggregateVersion = version + 1,
 * causationId = commandId, correlationId = the command's or its commandId, the command's timestamp and userId.
 * The view of an account after event v: {id, owner, balance, deposits, withdrawals, version: v}, one view record per
 * event (header foldstream.view.version = v); AccountClosed deletes it (`delete: true`: a tombstone with that header,
 * and the store keeps {view: null, version: v}), and an AccountOpened after it starts a new view.
 *
 * A third processor, `balance-bands`, is a projection with `groupBy` over the same events (docs/projections.md; its
 * records and stores as docs/wire-formats.md describes them): the first stage keeps per account {balance, version}
 * (deleted by AccountClosed, which takes the account out of its band; the store keeps {view: null, version, group:
 * null}) and puts the account in the group `band-<floor(balance / 1000)>` while its balance is above 0 (none at 0), with the
 * sums balance and versionSquares (version²); it writes the membership changes to `<app>-balance-bands-repartition`
 * keyed by group. The second stage `balance-bands-group` folds them into one view per band on `<app>-balance-bands`:
 * {key, accounts (count), balance, versionSquares}, or a tombstone when the band is left empty. What is checked, and
 * why no more, is written in model-groups.ts.
 *
 * A fourth, `account-tiers`, is a chained projection (inputFormat: view) over account-view's view topic: one record
 * per account-view record, modelled in model-tiers.ts from the model's views here.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import { canonical, checkPartition, compareSequence, compareStore, emptySequenceFindings, type Actual, type Expected, type SequenceFindings, type StoreFindings } from './compare.ts';
import { checkPositionedAtEnd, checkPositionedPast, EventIds, expectedEvent, parseValue, ReplyReader, replyValue, storedReplies, storedReplyValue, type Reply } from './aggregate-checks.ts';
import { DlqCheck } from './dlq.ts';
import { classifyCommand, classifyEvent, nonEmpty, type Command, type Event, type Obj } from './envelopes.ts';
import { countVerdict, emptyInputSummary, type ModelCheck, type ModelFindings, type Verdict } from './model.ts';
import type { VRecord } from './read-topics.ts';
import { AccountTiersCheck } from './model-tiers.ts';
import { GroupByCheck, VERSION_SQUARES, type Membership } from './model-groups.ts';
import { ChangelogState } from './store.ts';
import { at, BAD_KIND_HEADER, changelogName, dlqName, where } from './wire.ts';

export interface BankTopics {
  app: string;
  commands: string;
  events: string;
  replies: string;
  view: string;
  /** the grouped view topic of the projection `balance-bands` */
  bands: string;
  /** the view topic of the chained projection `account-tiers` (it reads `view`) */
  tiers: string;
  partitions: number;
  maxRecordBytes: number;
}

export const AGGREGATE = 'accounts';
export const PROJECTION = 'account-view';
/** The event types the projections have rules for, and the newest eventVersion each supports (maxEventVersion). */
const MAX_EVENT_VERSION = new Map([['AccountOpened', 1], ['Deposited', 2], ['Withdrawn', 1], ['AccountClosed', 1]]);
const MAX_AMOUNT = 1_000_000;

/** An event the projections have no rule for is refused by both (unknownEvents: dlq). */
function classifyBankEvent(r: VRecord, maxRecordBytes: number): Verdict<Event> {
  const v = classifyEvent(r, maxRecordBytes, MAX_EVENT_VERSION);
  if ('good' in v && !MAX_EVENT_VERSION.has(v.good.eventType)) return { bad: 'EVENT_TYPE_UNKNOWN', why: v.good.eventType };
  return v;
}

interface ModelEvent {
  eventType: string;
  data: Obj;
}


interface AccountModel {
  open: boolean;
  owner: string | null;
  balance: number;
  version: number;
  replies: Map<string, Reply>;
  /** per version, the expected event (canonical) */
  events: Expected[];
  /** per command, the expected reply */
  replySeq: Expected[];
  occurrences: Map<string, number>;
  /** account-view's view: undefined before the first event, null after AccountClosed */
  view: Obj | null | undefined;
  views: Expected[];
}

function decideModel(a: AccountModel, c: Command): { reply: Omit<Reply, 'commandId' | 'aggregateVersion' | 'events'>; event?: ModelEvent } {
  const reject = (code: string) => ({ reply: { status: 'rejected' as const, code } });
  const amount = c.data.amount;
  const validAmount = typeof amount === 'number' && Number.isSafeInteger(amount) && amount >= 1 && amount <= MAX_AMOUNT;
  switch (c.commandType) {
    case 'OpenAccount':
      if (a.open) return reject('ALREADY_OPEN');
      if (!nonEmpty(c.data.owner)) return reject('INVALID_OWNER');
      return { reply: { status: 'accepted', code: undefined }, event: { eventType: 'AccountOpened', data: { owner: c.data.owner } } };
    case 'Deposit':
      if (!a.open) return reject('NOT_OPEN');
      if (!validAmount) return reject('INVALID_AMOUNT');
      return { reply: { status: 'accepted', code: undefined }, event: { eventType: 'Deposited', data: { amount } } };
    case 'Withdraw':
      if (!a.open) return reject('NOT_OPEN');
      if (!validAmount) return reject('INVALID_AMOUNT');
      if (a.balance < (amount as number)) return reject('INSUFFICIENT_FUNDS');
      return { reply: { status: 'accepted', code: undefined }, event: { eventType: 'Withdrawn', data: { amount } } };
    case 'CloseAccount':
      if (!a.open) return reject('NOT_OPEN');
      return { reply: { status: 'accepted', code: undefined }, event: { eventType: 'AccountClosed', data: { balance: a.balance } } };
    default:
      return reject('UNKNOWN_COMMAND');
  }
}

export const GROUPED = 'balance-bands';
export const BAND_WIDTH = 1000;

/** An account with a balance b > 0 is in the band `band-<floor(b / BAND_WIDTH)>`; at 0 it is in no band. */
function bandOf(balance: number, version: number): Membership | undefined {
  if (!(balance > 0)) return undefined;
  return { key: `band-${Math.floor(balance / BAND_WIDTH)}`, sums: { balance, versionSquares: version * version } };
}

export class BankModel implements ModelCheck {
  readonly workload = 'bank';
  readonly inputTopics: string[];
  readonly outputTopics: string[];
  readonly transactionalTopics: string[];
  private readonly summary = emptyInputSummary();
  private readonly accounts = new Map<string, AccountModel>();
  private readonly commandDlq: DlqCheck;
  private readonly eventDlq: DlqCheck;
  private readonly stateLog: ChangelogState;
  private readonly commandsLog: ChangelogState;
  private readonly viewLog: ChangelogState;
  private readonly delivered = { events: new Map<string, Actual[]>(), replies: new Map<string, Actual[]>(), views: new Map<string, Actual[]>() };
  /** account → version → eventId, as delivered */
  private readonly eventIds = new EventIds();
  private readonly replyReader = new ReplyReader(this.eventIds);
  private readonly extra = { replies: emptySequenceFindings(), events: emptySequenceFindings(), views: emptySequenceFindings() };
  /** the groupBy projection `balance-bands`, both stages */
  private readonly bands: GroupByCheck;
  /** the chained projection `account-tiers`, over account-view's view topic */
  private readonly tiers: AccountTiersCheck;

  constructor(private readonly t: BankTopics) {
    const cl = (p: string, s: string) => changelogName(t.app, p, s);
    this.commandDlq = new DlqCheck(dlqName(t.app, AGGREGATE), AGGREGATE);
    this.eventDlq = new DlqCheck(dlqName(t.app, PROJECTION), PROJECTION);
    this.stateLog = new ChangelogState(cl(AGGREGATE, 'state'));
    this.commandsLog = new ChangelogState(cl(AGGREGATE, 'commands'));
    this.viewLog = new ChangelogState(cl(PROJECTION, 'view'));
    this.inputTopics = [t.commands];
    this.bands = new GroupByCheck({
      app: t.app,
      processor: GROUPED,
      output: t.bands,
      input: t.events,
      partitions: t.partitions,
      countField: 'accounts',
      sumFields: ['balance', VERSION_SQUARES],
      statsPrefix: 'band',
    });
    this.tiers = new AccountTiersCheck(t.app, t.tiers, t.view, t.partitions);
    const internal = [this.commandDlq.topic, this.eventDlq.topic, this.stateLog.topic, this.commandsLog.topic, this.viewLog.topic];
    // the grouped view, and the repartition topic between the two stages with their stores and dead letters; the
    // chained view with its store and dead letters
    this.outputTopics = [t.events, t.replies, t.view, ...internal, ...this.bands.topics, ...this.tiers.topics];
    // the aggregate's command-expiry index is written in the same transactions; its content is not modelled
    this.transactionalTopics = [t.events, t.replies, t.view, ...internal, cl(AGGREGATE, 'command-expiry'), ...this.bands.topics, ...this.tiers.topics];
  }

  private account(id: string): AccountModel {
    let a = this.accounts.get(id);
    if (!a) {
      a = { open: false, owner: null, balance: 0, version: 0, replies: new Map(), events: [], replySeq: [], occurrences: new Map(), view: undefined, views: [] };
      this.accounts.set(id, a);
    }
    return a;
  }

  onInput(r: VRecord): void {
    const v = classifyCommand(r, this.t.maxRecordBytes);
    countVerdict(this.summary, r, 'bad' in v, 'bad' in v ? `${v.bad}: ${v.why}` : '', BAD_KIND_HEADER);
    if ('bad' in v) return this.commandDlq.expect(r, v.bad, r.headers[BAD_KIND_HEADER] ?? v.why);
    this.apply(v.good, r);
  }

  /** The aggregate's rules for one good command; the projection's view follows each event. */
  private apply(c: Command, r: VRecord): void {
    const a = this.account(c.aggregateId);
    const k = (a.occurrences.get(c.commandId) ?? 0) + 1;
    a.occurrences.set(c.commandId, k);
    let reply = a.replies.get(c.commandId);
    if (!reply) {
      if (c.expectedVersion !== undefined && c.expectedVersion !== null && c.expectedVersion !== a.version) {
        reply = { commandId: c.commandId, status: 'conflict', code: 'CONCURRENCY_CONFLICT', aggregateVersion: a.version, events: 0 };
      } else {
        const d = decideModel(a, c);
        if (d.event) {
          a.version++;
          const e = d.event;
          if (e.eventType === 'AccountOpened') [a.open, a.owner] = [true, e.data.owner as string];
          if (e.eventType === 'Deposited') a.balance += e.data.amount as number;
          if (e.eventType === 'Withdrawn') a.balance -= e.data.amount as number;
          if (e.eventType === 'AccountClosed') [a.open, a.owner, a.balance] = [false, null, 0];
          a.events.push({ id: String(a.version), value: expectedEvent(c, r.timestamp, 'Account', a.version, e) });
          if (e.eventType === 'AccountClosed') {
            a.view = null;
            a.views.push({ id: String(a.version), value: canonical(null) });
          } else {
            const counter = e.eventType === 'Deposited' ? 'deposits' : 'withdrawals';
            const view: Obj =
              e.eventType === 'AccountOpened'
                ? { id: c.aggregateId, owner: e.data.owner, balance: 0, deposits: 0, withdrawals: 0 }
                : { ...a.view, balance: a.balance, [counter]: ((a.view?.[counter] as number) ?? 0) + 1 };
            view.version = a.version;
            a.view = view;
            a.views.push({ id: String(a.version), value: canonical(view) });
          }
          const deleted = e.eventType === 'AccountClosed';
          this.bands.onEvent(c.aggregateId, deleted ? null : { balance: a.balance, version: a.version }, a.version, deleted ? undefined : bandOf(a.balance, a.version));
          // account-view's record of this version (a view, or a tombstone) is account-tiers' next input
          this.tiers.onUpstreamView(c.aggregateId, deleted ? null : a.balance, a.version);
        }
        reply = { commandId: c.commandId, status: d.reply.status, code: d.reply.code, aggregateVersion: a.version, events: d.event ? 1 : 0 };
      }
      a.replies.set(c.commandId, reply);
    }
    a.replySeq.push({ id: `${c.commandId}#${k}`, value: replyValue(reply) });
  }

  private deliver(kind: 'events' | 'replies' | 'views', r: VRecord, id: string, value: string): void {
    const key = r.key?.toString('utf8') ?? '<null>';
    checkPartition(this.extra[kind], r, this.t.partitions);
    const list = this.delivered[kind].get(key) ?? [];
    list.push({ id, value, where: at(r) });
    this.delivered[kind].set(key, list);
  }

  onOutput(r: VRecord): void {
    switch (r.topic) {
      case this.t.events: {
        // the projection's input: the aggregate's events and the generator's bad events
        const v = classifyBankEvent(r, this.t.maxRecordBytes);
        countVerdict(this.summary, r, 'bad' in v, 'bad' in v ? `${v.bad}: ${v.why}` : '', BAD_KIND_HEADER);
        this.bands.noteOffset(r);
        if ('bad' in v) {
          // both projections read the events with the same rules and versions, so refuse the same records
          this.bands.dlq.expect(r, v.bad, r.headers[BAD_KIND_HEADER] ?? v.why);
          return this.eventDlq.expect(r, v.bad, r.headers[BAD_KIND_HEADER] ?? v.why);
        }
        const { eventId, ...rest } = v.good;
        this.eventIds.delivered(rest.aggregateId, rest.aggregateVersion, eventId);
        return this.deliver('events', r, String(rest.aggregateVersion), canonical(rest));
      }
      case this.t.replies: {
        const reply = this.replyReader.read(r, this.extra.replies);
        return this.deliver('replies', r, reply.id, reply.value);
      }
      case this.t.view: {
        this.tiers.noteUpstream(r);
        if (r.value === null) return this.deliver('views', r, r.headers['foldstream.view.version'] ?? `tombstone without a version at ${at(r)}`, canonical(null));
        const v = parseValue(r);
        return this.deliver('views', r, r.headers['foldstream.view.version'] ?? String(v.version), canonical(v));
      }
      case this.commandDlq.topic:
        return this.commandDlq.onRecord(r);
      case this.eventDlq.topic:
        return this.eventDlq.onRecord(r);
      case this.stateLog.topic:
        return this.stateLog.onRecord(r);
      case this.commandsLog.topic:
        return this.commandsLog.onRecord(r);
      case this.viewLog.topic:
        return this.viewLog.onRecord(r);
      default:
        if (!this.tiers.onOutput(r)) this.bands.onOutput(r);
    }
  }

  finish(inputEnds: Map<string, bigint>): ModelFindings {
    const out: Record<'events' | 'replies' | 'views', SequenceFindings> = { events: this.extra.events, replies: this.extra.replies, views: this.extra.views };
    const stateModel = new Map<string, string>();
    const commandsModel = new Map<string, string>();
    const viewModel = new Map<string, string>();
    for (const [id, a] of this.accounts) {
      compareSequence(out.events, id, a.events, this.delivered.events.get(id) ?? []);
      compareSequence(out.replies, id, a.replySeq, this.delivered.replies.get(id) ?? []);
      compareSequence(out.views, id, a.views, this.delivered.views.get(id) ?? []);
      if (a.version > 0) {
        stateModel.set(id, canonical({ version: a.version, state: { open: a.open, owner: a.owner, balance: a.balance } }));
        viewModel.set(id, canonical({ view: a.view, version: a.version }));
      }
      // keyed by [aggregate key, commandId]: a commandId is one aggregate's (docs/wire-formats.md)
      for (const [commandId, r] of a.replies) commandsModel.set(JSON.stringify([id, commandId]), storedReplyValue(r, id));
    }
    for (const kind of ['events', 'replies', 'views'] as const) {
      for (const [key, actual] of this.delivered[kind]) if (!this.accounts.has(key)) compareSequence(out[kind], key, [], actual);
    }
    // the eventIds of each accepted reply are those of the events it caused
    this.eventIds.check(out.replies);
    const stores = [
      compareStore('state', this.stateLog.topic, this.stateLog.values, stateModel),
      compareStore('commands', this.commandsLog.topic, storedReplies(this.commandsLog), commandsModel),
      compareStore('view', this.viewLog.topic, this.viewLog.values, viewModel),
    ];
    const past = (store: StoreFindings, log: ChangelogState, input: string) => checkPositionedPast(store, log, input, this.bands.lastOffsets.get(input));
    past(stores[2]!, this.viewLog, this.t.events);
    const bands = this.bands.finish(past);
    const tiers = this.tiers.finish();
    stores.push(...bands.stores, ...tiers.stores);
    // the aggregate's stores must be positioned at the end of the commands topic
    for (const log of [this.stateLog, this.commandsLog]) checkPositionedAtEnd(stores.find((x) => x.changelog === log.topic)!, log, this.t.commands, inputEnds);
    const stats: Record<string, number> = { accounts: this.accounts.size, commands: 0, repeatedCommandIds: 0, events: 0, accountsClosed: 0, accountsReopened: 0, viewsDeletedAtEnd: 0 };
    for (const a of this.accounts.values()) {
      stats.commands! += a.replySeq.length;
      stats.events! += a.events.length;
      stats.accountsClosed! += a.views.filter((v) => v.value === 'null').length;
      stats.accountsReopened! += a.views.filter((v, i) => i > 0 && a.views[i - 1]!.value === 'null').length;
      if (a.view === null) stats.viewsDeletedAtEnd!++;
      for (const n of a.occurrences.values()) if (n > 1) stats.repeatedCommandIds! += n - 1;
      for (const r of a.replies.values()) {
        const k = r.status === 'rejected' ? `rejected ${r.code}` : r.status;
        stats[k] = (stats[k] ?? 0) + 1;
      }
    }
    Object.assign(stats, bands.stats, tiers.stats);
    return {
      stats,
      input: this.summary,
      outputs: { [this.t.events]: out.events, [this.t.replies]: out.replies, [this.t.view]: out.views, ...tiers.outputs, ...bands.outputs },
      stores,
      dlq: [this.commandDlq.finish(), this.eventDlq.finish(), ...tiers.dlq, ...bands.dlq],
    };
  }
}
