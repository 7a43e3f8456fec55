/**
 * Model of the event-sourcing workload, from docs/wire-formats.md, DESIGN §6-§8 and the bank rules (not from code):
 * an aggregate `accounts` (commands → events + replies; stores `state` and `commands`) and a projection `account-view`
 * (events → views; store `view`).
 *
 * Which records are dead letters, checked in this order:
 *   commands (processor accounts)           events (processor account-view)
 *   key + value > maxRecordBytes  RECORD_TOO_LARGE        same
 *   null key                      KEY_MISSING             same
 *   not UTF-8 JSON (or empty)     DESERIALIZATION_FAILED  same
 *   envelope: an object with commandId, commandType,      envelope: eventId, eventType, aggregateType, aggregateId,
 *     aggregateId non-empty strings, data an object,        timestamp non-empty strings, eventVersion and
 *     expectedVersion absent/null or an integer ≥ 0,       aggregateVersion integers ≥ 1, data an object, userId,
 *     userId, timestamp, correlationId, tenantId           correlationId, causationId, tenantId absent/null or
 *     absent/null or strings     ENVELOPE_INVALID          strings                        ENVELOPE_INVALID
 *   key ≠ aggregateId             KEY_MISMATCH            same
 *                                                         eventVersion above the type's maximum (Deposited 2,
 *                                                         read through the upcaster 1 → 2; the others 1)
 *                                                                                        EVENT_VERSION_UNSUPPORTED
 *                                                         a type without a rule           EVENT_TYPE_UNKNOWN
 * A null value decodes to null, which is not an envelope (ENVELOPE_INVALID).
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
 * why no more, is written at BalanceBandsCheck below.
 *
 * A fourth, `account-tiers`, is a chained projection (inputFormat: view) over account-view's view topic: one record
 * per account-view record, modelled in model-tiers.ts from the model's views here.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import { canonical, checkPartition, compareSequence, compareStore, emptySequenceFindings, type Actual, type Expected, type SequenceFindings, type StoreFindings, viewActual } from './compare.ts';
import { DlqCheck, type DlqFindings } from './dlq.ts';
import { countVerdict, emptyInputSummary, type ModelCheck, type ModelFindings, type Verdict } from './model.ts';
import type { VRecord } from './read-topics.ts';
import { AccountTiersCheck } from './model-tiers.ts';
import { ChangelogState } from './store.ts';
import { at, BAD_KIND_HEADER, changelogName, dlqName, groupStageName, repartitionName, where } from './wire.ts';

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

type Obj = Record<string, unknown>;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown) => typeof v === 'string' && v.length > 0;
const optString = (v: unknown) => v === undefined || v === null || typeof v === 'string';
const intAtLeast = (v: unknown, min: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

function decodeRecord(r: VRecord, maxRecordBytes: number): Verdict<unknown> {
  const size = (r.key?.length ?? 0) + (r.value?.length ?? 0);
  if (size > maxRecordBytes) return { bad: 'RECORD_TOO_LARGE', why: `${size} bytes` };
  if (r.key === null) return { bad: 'KEY_MISSING', why: 'null key' };
  if (r.value === null) return { good: null };
  try {
    return { good: JSON.parse(utf8.decode(r.value)) };
  } catch (e) {
    return { bad: 'DESERIALIZATION_FAILED', why: (e as Error).message };
  }
}

export interface Command {
  commandId: string;
  commandType: string;
  aggregateId: string;
  expectedVersion?: number | null;
  userId?: string | null;
  timestamp?: string | null;
  correlationId?: string | null;
  data: Obj;
}

export function classifyCommand(r: VRecord, maxRecordBytes: number): Verdict<Command> {
  const d = decodeRecord(r, maxRecordBytes);
  if ('bad' in d) return d;
  const c = d.good;
  const invalid = (why: string) => ({ bad: 'ENVELOPE_INVALID', why });
  if (!isObj(c)) return invalid('not an object');
  if (!nonEmpty(c.commandId) || !nonEmpty(c.commandType) || !nonEmpty(c.aggregateId)) return invalid('commandId, commandType, aggregateId');
  if (!(c.expectedVersion === undefined || c.expectedVersion === null || intAtLeast(c.expectedVersion, 0))) return invalid('expectedVersion');
  if (![c.userId, c.timestamp, c.correlationId, c.tenantId].every(optString)) return invalid('optional strings');
  if (!isObj(c.data)) return invalid('data');
  if (r.key!.toString('utf8') !== c.aggregateId) return { bad: 'KEY_MISMATCH', why: 'key ≠ aggregateId' };
  return { good: c as unknown as Command };
}

export interface Event {
  eventId: string;
  eventType: string;
  eventVersion: number;
  aggregateType: string;
  aggregateId: string;
  aggregateVersion: number;
  timestamp: string;
  userId?: string;
  correlationId?: string;
  causationId?: string;
  data: Obj;
}

export function classifyEvent(r: VRecord, maxRecordBytes: number): Verdict<Event> {
  const d = decodeRecord(r, maxRecordBytes);
  if ('bad' in d) return d;
  const e = d.good;
  const invalid = (why: string) => ({ bad: 'ENVELOPE_INVALID', why });
  if (!isObj(e)) return invalid('not an object');
  if (![e.eventId, e.eventType, e.aggregateType, e.aggregateId, e.timestamp].every(nonEmpty)) return invalid('required strings');
  if (!intAtLeast(e.eventVersion, 1) || !intAtLeast(e.aggregateVersion, 1)) return invalid('versions');
  if (![e.userId, e.correlationId, e.causationId, e.tenantId].every(optString)) return invalid('optional strings');
  if (!isObj(e.data)) return invalid('data');
  if (r.key!.toString('utf8') !== e.aggregateId) return { bad: 'KEY_MISMATCH', why: 'key ≠ aggregateId' };
  const type = e.eventType as string;
  const max = MAX_EVENT_VERSION.get(type);
  if (max !== undefined && (e.eventVersion as number) > max) return { bad: 'EVENT_VERSION_UNSUPPORTED', why: `${type} v${String(e.eventVersion)}` };
  if (max === undefined) return { bad: 'EVENT_TYPE_UNKNOWN', why: type };
  return { good: e as unknown as Event };
}

interface ModelEvent {
  eventType: string;
  data: Obj;
}

interface Reply {
  commandId: string;
  status: 'accepted' | 'rejected' | 'conflict';
  code: string | undefined;
  aggregateVersion: number;
  events: number;
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

const replyValue = (r: Reply) => canonical({ commandId: r.commandId, status: r.status, code: r.code ?? null, aggregateVersion: r.aggregateVersion, events: r.events });

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
export const GROUPED_STAGE = groupStageName(GROUPED);
/** An account with a balance b > 0 is in the band `band-<floor(b / BAND_WIDTH)>`; at 0 it is in no band. */
export const BAND_WIDTH = 1000;

interface BandSums {
  balance: number;
  versionSquares: number;
}

/** docs/wire-formats.md, the `view` store with groupBy: the group an account's view counts in, and its sums. */
interface Membership {
  key: string;
  sums: BandSums;
}

/** docs/wire-formats.md, "Repartition": a record's value; its key is the group. */
interface Change {
  source: string;
  members: -1 | 0 | 1;
  sums: Record<string, number>;
}

/** The workload's groupBy over the view {balance, version}. */
function bandOf(balance: number, version: number): Membership | undefined {
  if (!(balance > 0)) return undefined;
  return { key: `band-${Math.floor(balance / BAND_WIDTH)}`, sums: { balance, versionSquares: version * version } };
}

/** The repartition records of one view change (docs/projections.md, groupBy): leave (-1), join (+1), or stay (0, sum deltas, only when one is not 0). */
function bandChanges(source: string, before: Membership | undefined, after: Membership | undefined): [string, Change][] {
  if (before && after && before.key === after.key) {
    const sums = { balance: after.sums.balance - before.sums.balance, versionSquares: after.sums.versionSquares - before.sums.versionSquares };
    return sums.balance !== 0 || sums.versionSquares !== 0 ? [[after.key, { source, members: 0, sums }]] : [];
  }
  const out: [string, Change][] = [];
  if (before) out.push([before.key, { source, members: -1, sums: { balance: -before.sums.balance, versionSquares: -before.sums.versionSquares } }]);
  if (after) out.push([after.key, { source, members: 1, sums: { ...after.sums } }]);
  return out;
}

const sign = (members: number) => (members > 0 ? '+' : members < 0 ? '-' : '=');

/**
 * The event version a repartition record was caused by, read back from its versionSquares: a join at version v adds
 * v², a leave at v removes (v-1)² (the view's previous version), a stay adds v² - (v-1)² = 2v - 1. Undefined when the
 * record names no version (a corrupt record).
 */
function changeLabel(c: Change): string | undefined {
  const sq = c.sums.versionSquares;
  if (typeof sq !== 'number') return undefined;
  const v = c.members === 1 ? Math.sqrt(sq) : c.members === -1 ? Math.sqrt(-sq) + 1 : (sq + 1) / 2;
  return Number.isSafeInteger(v) && v >= 1 ? `v${v}${sign(c.members)}` : undefined;
}

/** The group stage's admission (docs/wire-formats.md, "Repartition"): { source, members: -1 | 0 | 1, sums: { field: number } }. */
function readChange(r: VRecord): Verdict<Change> {
  if (r.key === null) return { bad: 'KEY_MISSING', why: 'null key' };
  let v: unknown;
  try {
    v = JSON.parse(utf8.decode(r.value ?? Buffer.alloc(0)));
  } catch (e) {
    return { bad: 'DESERIALIZATION_FAILED', why: (e as Error).message };
  }
  const ok =
    isObj(v) &&
    typeof v.source === 'string' &&
    (v.members === -1 || v.members === 0 || v.members === 1) &&
    isObj(v.sums) &&
    Object.values(v.sums).every((n) => typeof n === 'number' && Number.isFinite(n));
  return ok ? { good: v as unknown as Change } : { bad: 'ENVELOPE_INVALID', why: 'not a repartition record' };
}

interface BandModel {
  members: number;
  balance: number;
  versionSquares: number;
  /** changes the model sends to the band: the group's final version */
  changes: number;
}

/**
 * The `balance-bands` projection (groupBy) across both stages. What the output semantics allow to check, and what not:
 *
 * - **Repartition topic (first stage), every record exactly once, in order.** The records one account causes are
 *   deterministic (the model's per-account events), and all records of one (band, account) pair are in one partition
 *   (the band's) in the order the account's events were applied; records of different accounts, or of one account to
 *   different bands, have no order between them that the model could predict. So the check is per (band, account):
 *   each predicted change once, in order, with its value, in the band's murmur2 partition. The versionSquares sum is
 *   in the groupBy for this check: it makes every repartition record name the event version that caused it
 *   (changeLabel), so a re-sent change is counted as a duplicate and a lost one as a loss, not as a shifted sequence.
 * - **Grouped view topic (second stage), every record exactly once, in order.** One record per change applied to a
 *   band, with header foldstream.view.version = 1, 2, ... N, N the number of changes committed to the band (which the
 *   first check ties to the model). Its *values* in between depend on how the changes of different accounts
 *   interleave in the repartition partition (the tasks of the first stage commit independently), so they are not
 *   predicted from the input: they are predicted from the repartition log as committed (read by the verifier's own
 *   reader, which decides commits from the markers, in offset order: the order the group stage reads it): version k
 *   must be the fold of the band's first k committed changes (a band with no members is a tombstone). With the first
 *   check this covers both stages: the log holds each predicted change once, and the group stage applied each
 *   committed change once, in order. A duplicate or a loss in the view topic shows as such (versions repeated or
 *   missing); a change applied twice, skipped, or applied without being committed shows as a wrong value at every
 *   later version, and the first samples compare, per band, the versions written with the changes committed.
 * - **Final values.** The last record per band on the view topic (the compacted topic read as a table: a tombstone
 *   deletes) equals the model's band {key, accounts, balance, versionSquares}: counts and sums do not depend on the
 *   interleaving, so the final value is deterministic even where the intermediate ones are not. Bands empty at the
 *   end must be tombstones (absent).
 * - **Stores**, read through their changelogs: `view` of the first stage ({view: {balance, version}, version, group})
 *   and `groups` of the second ({view, members, version: N}) equal to the model; the last position marker of each
 *   changelog partition at or past the last record of its input partition (events, repartition). The markers are not
 *   compared with the end of the log itself: a transactional input ends in commit markers the position may or may
 *   not have moved over.
 * - **Dead letters**: the first stage gets the same bad events as account-view; the group stage none (its input is
 *   foldstream's own: a repartition record it would refuse is expected in its DLQ, and is wrong in the repartition
 *   check anyway).
 * Not checkable: a transient state of a band that no record shows (the group stage writes a record per change, so
 * there is none), and the interleaving itself (any order of different accounts' changes is correct).
 */
class BalanceBandsCheck {
  readonly repartition: string;
  readonly dlq: DlqCheck;
  readonly groupDlq: DlqCheck;
  readonly viewLog: ChangelogState;
  readonly groupsLog: ChangelogState;
  /** account → its first-stage view ({balance, version}; null once deleted by AccountClosed) and band */
  private readonly accounts = new Map<string, { band: Membership | undefined; balance: number | null; version: number }>();
  private readonly bands = new Map<string, BandModel>();
  /** "band ← account" → predicted changes, in the account's order */
  private readonly expectedChanges = new Map<string, Expected[]>();
  private readonly deliveredChanges = new Map<string, Actual[]>();
  /** band → its committed changes in repartition offset order (the group stage's input, as it read it) */
  private readonly log = new Map<string, { change: Change; where: string }[]>();
  private readonly deliveredViews = new Map<string, Actual[]>();
  /** the view topic read as a table: band → last value */
  private readonly lastViews = new Map<string, string>();
  /** per input topic and partition, the offset of the last committed record (for the position markers) */
  readonly lastOffsets = new Map<string, Map<number, bigint>>();
  private readonly extra = { repartition: emptySequenceFindings(), views: emptySequenceFindings() };
  private readonly changeKinds = { joins: 0, leaves: 0, stays: 0 };
  /** leaves caused by a deleted view (AccountClosed) */
  private leavesOnDelete = 0;

  constructor(
    private readonly app: string,
    private readonly t: BankTopics,
  ) {
    this.repartition = repartitionName(app, GROUPED);
    this.dlq = new DlqCheck(dlqName(app, GROUPED), GROUPED);
    this.groupDlq = new DlqCheck(dlqName(app, GROUPED_STAGE), GROUPED_STAGE);
    this.viewLog = new ChangelogState(changelogName(app, GROUPED, 'view'));
    this.groupsLog = new ChangelogState(changelogName(app, GROUPED_STAGE, 'groups'));
  }

  get topics(): string[] {
    return [this.t.bands, this.repartition, this.dlq.topic, this.groupDlq.topic, this.viewLog.topic, this.groupsLog.topic];
  }

  noteOffset(r: VRecord): void {
    const m = this.lastOffsets.get(r.topic) ?? new Map<number, bigint>();
    if ((m.get(r.partition) ?? -1n) < r.offset) m.set(r.partition, r.offset);
    this.lastOffsets.set(r.topic, m);
  }

  /** The account's view after one of its events (the model's, in per-account order); a null balance: view deleted. */
  onEvent(account: string, balance: number | null, version: number): void {
    const a = this.accounts.get(account) ?? { band: undefined, balance: 0, version: 0 };
    const after = balance === null ? undefined : bandOf(balance, version);
    for (const [key, change] of bandChanges(account, a.band, after)) {
      const pair = `${key} ← ${account}`;
      const list = this.expectedChanges.get(pair) ?? [];
      list.push({ id: `v${version}${sign(change.members)}`, value: canonical(change) });
      this.expectedChanges.set(pair, list);
      const b = this.bands.get(key) ?? { members: 0, balance: 0, versionSquares: 0, changes: 0 };
      b.members += change.members;
      b.balance += change.sums.balance!;
      b.versionSquares += change.sums.versionSquares!;
      b.changes++;
      this.bands.set(key, b);
      this.changeKinds[change.members === 1 ? 'joins' : change.members === -1 ? 'leaves' : 'stays']++;
      if (balance === null) this.leavesOnDelete++;
    }
    this.accounts.set(account, { band: after, balance, version });
  }

  /** true when the record was one of this processor's topics */
  onOutput(r: VRecord): boolean {
    switch (r.topic) {
      case this.repartition: {
        this.noteOffset(r);
        checkPartition(this.extra.repartition, r, this.t.partitions);
        const key = r.key?.toString('utf8') ?? '<null>';
        const v = readChange(r);
        if ('bad' in v) {
          // foldstream never writes one; the group stage must dead-letter it, and it predicts nothing
          this.groupDlq.expect(r, v.bad, `repartition record: ${v.why}`);
          this.extra.repartition.wrongValues++;
          if (this.extra.repartition.samples.length < 8) this.extra.repartition.samples.push(`unreadable repartition record at ${where(r)}: ${v.why}`);
          return true;
        }
        const pair = `${key} ← ${v.good.source}`;
        const list = this.deliveredChanges.get(pair) ?? [];
        list.push({ id: changeLabel(v.good) ?? `no version at ${at(r)}`, value: canonical(v.good), where: at(r) });
        this.deliveredChanges.set(pair, list);
        const entries = this.log.get(key) ?? [];
        entries.push({ change: v.good, where: at(r) });
        this.log.set(key, entries);
        return true;
      }
      case this.t.bands: {
        checkPartition(this.extra.views, r, this.t.partitions);
        const key = r.key?.toString('utf8') ?? '<null>';
        const view = viewActual(r);
        const list = this.deliveredViews.get(key) ?? [];
        list.push(view);
        this.deliveredViews.set(key, list);
        if (r.value === null) this.lastViews.delete(key);
        else this.lastViews.set(key, view.value);
        return true;
      }
      case this.dlq.topic:
        this.dlq.onRecord(r);
        return true;
      case this.groupDlq.topic:
        this.groupDlq.onRecord(r);
        return true;
      case this.viewLog.topic:
        this.viewLog.onRecord(r);
        return true;
      case this.groupsLog.topic:
        this.groupsLog.onRecord(r);
        return true;
    }
    return false;
  }

  private bandView(key: string, b: { members: number; balance: number; versionSquares: number }): Obj | null {
    return b.members > 0 ? { key, accounts: b.members, balance: b.balance, versionSquares: b.versionSquares } : null;
  }

  finish(positionCheck: (store: StoreFindings, log: ChangelogState, input: string) => void): {
    outputs: Record<string, SequenceFindings>;
    stores: StoreFindings[];
    dlq: DlqFindings[];
    stats: Record<string, number>;
  } {
    // first stage: per (band, account), each predicted change once and in order
    const repartition = this.extra.repartition;
    for (const [pair, expected] of this.expectedChanges) compareSequence(repartition, pair, expected, this.deliveredChanges.get(pair) ?? []);
    for (const [pair, actual] of this.deliveredChanges) if (!this.expectedChanges.has(pair)) compareSequence(repartition, pair, [], actual);

    // second stage: per band, versions 1..N, version k the fold of the first k committed changes
    const views = this.extra.views;
    // first, per band, how many changes the group stage applied against how many the repartition log committed
    for (const [key, actual] of this.deliveredViews) {
      const applied = actual.reduce((n, a) => Math.max(n, Number(a.id) || 0), 0);
      const committed = this.log.get(key)?.length ?? 0;
      if (applied !== committed && views.samples.length < 4) views.samples.push(`band ${key}: the group stage wrote versions up to ${applied}; the repartition log committed ${committed} changes to it`);
    }
    let tombstones = 0;
    for (const [key, entries] of this.log) {
      const expected: Expected[] = [];
      let state = { members: 0, balance: 0, versionSquares: 0 };
      for (const { change, where: w } of entries) {
        const members = state.members + change.members;
        if (members < 0) {
          repartition.outOfOrder++;
          if (repartition.samples.length < 8) repartition.samples.push(`band ${key} below 0 members at ${w}: a removal before the addition it undoes`);
        }
        if (members <= 0) {
          state = { members: 0, balance: 0, versionSquares: 0 };
          tombstones++;
        } else {
          state = { members, balance: state.balance + (change.sums.balance ?? 0), versionSquares: state.versionSquares + (change.sums.versionSquares ?? 0) };
        }
        expected.push({ id: String(expected.length + 1), value: canonical(this.bandView(key, state)) });
      }
      // predicted from the log as committed: a change the first stage lost or doubled is the repartition check's
      // finding (and the final value's), not the group stage's
      compareSequence(views, key, expected, this.deliveredViews.get(key) ?? []);
    }
    for (const [key, actual] of this.deliveredViews) if (!this.log.has(key)) compareSequence(views, key, [], actual);

    // final values, and the stores
    const finalModel = new Map<string, string>();
    const groupsModel = new Map<string, string>();
    for (const [key, b] of this.bands) {
      const view = this.bandView(key, b);
      if (view) finalModel.set(key, canonical(view));
      groupsModel.set(key, canonical({ view, members: b.members, version: b.changes }));
    }
    const viewModel = new Map<string, string>();
    for (const [id, a] of this.accounts) {
      const view = a.balance === null ? null : { balance: a.balance, version: a.version };
      viewModel.set(id, canonical({ view, version: a.version, group: a.band ?? null }));
    }
    const stores = [
      compareStore(`${GROUPED} output (last value per band)`, this.t.bands, this.lastViews, finalModel),
      compareStore(`${GROUPED} view`, this.viewLog.topic, this.viewLog.values, viewModel),
      compareStore(`${GROUPED_STAGE} groups`, this.groupsLog.topic, this.groupsLog.values, groupsModel),
    ];
    positionCheck(stores[1]!, this.viewLog, this.t.events);
    positionCheck(stores[2]!, this.groupsLog, this.repartition);

    const stats: Record<string, number> = {
      bands: this.bands.size,
      bandsEmptyAtEnd: [...this.bands.values()].filter((b) => b.members === 0).length,
      bandLeavesOnDelete: this.leavesOnDelete,
      bandJoins: this.changeKinds.joins,
      bandLeaves: this.changeKinds.leaves,
      bandStays: this.changeKinds.stays,
      bandTombstones: tombstones,
    };
    return { outputs: { [this.repartition]: repartition, [this.t.bands]: views }, stores, dlq: [this.dlq.finish(), this.groupDlq.finish()], stats };
  }
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
  private readonly eventIds = new Map<string, Map<number, string>>();
  /** account → delivered reply → its eventIds, to check against the delivered events */
  private readonly replyEventIds: { key: string; where: string; from: number; ids: string[] }[] = [];
  /** account + commandId → replies delivered so far (the n-th reply of a repeated command is `${commandId}#n`) */
  private readonly deliveredOccurrences = new Map<string, number>();
  private readonly extra = { replies: emptySequenceFindings(), events: emptySequenceFindings(), views: emptySequenceFindings() };
  /** the groupBy projection `balance-bands`, both stages */
  private readonly bands: BalanceBandsCheck;
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
    this.bands = new BalanceBandsCheck(t.app, t);
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
          const event: Obj = {
            eventType: e.eventType,
            eventVersion: 1,
            aggregateType: 'Account',
            aggregateId: c.aggregateId,
            aggregateVersion: a.version,
            timestamp: c.timestamp ?? new Date(r.timestamp).toISOString(),
            correlationId: c.correlationId ?? c.commandId,
            causationId: c.commandId,
            data: e.data,
          };
          if (c.userId) event.userId = c.userId;
          a.events.push({ id: String(a.version), value: canonical(event) });
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
          this.bands.onEvent(c.aggregateId, deleted ? null : a.balance, a.version);
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
    const parse = (): Obj => {
      try {
        const v = JSON.parse(r.value?.toString('utf8') ?? 'null') as unknown;
        return isObj(v) ? v : { unreadable: true };
      } catch {
        return { unreadable: true };
      }
    };
    switch (r.topic) {
      case this.t.events: {
        // the projection's input: the aggregate's events and the generator's bad events
        const v = classifyEvent(r, this.t.maxRecordBytes);
        countVerdict(this.summary, r, 'bad' in v, 'bad' in v ? `${v.bad}: ${v.why}` : '', BAD_KIND_HEADER);
        this.bands.noteOffset(r);
        if ('bad' in v) {
          // both projections read the events with the same rules and versions, so refuse the same records
          this.bands.dlq.expect(r, v.bad, r.headers[BAD_KIND_HEADER] ?? v.why);
          return this.eventDlq.expect(r, v.bad, r.headers[BAD_KIND_HEADER] ?? v.why);
        }
        const { eventId, ...rest } = v.good;
        const ids = this.eventIds.get(rest.aggregateId) ?? new Map<number, string>();
        ids.set(rest.aggregateVersion, eventId);
        this.eventIds.set(rest.aggregateId, ids);
        return this.deliver('events', r, String(rest.aggregateVersion), canonical(rest));
      }
      case this.t.replies: {
        const v = parse();
        const ids = Array.isArray(v.eventIds) ? (v.eventIds as string[]) : [];
        const status = v.status as string;
        const value = canonical({ commandId: v.commandId, status, code: v.code ?? null, aggregateVersion: v.aggregateVersion, events: ids.length });
        const key = r.key?.toString('utf8') ?? '<null>';
        const occurrence = `${key}\u0000${String(v.commandId)}`;
        const k = (this.deliveredOccurrences.get(occurrence) ?? 0) + 1;
        this.deliveredOccurrences.set(occurrence, k);
        if (status !== 'accepted' && !nonEmpty(v.reason)) {
          this.extra.replies.wrongValues++;
          this.extra.replies.samples.push(`reply without a reason at ${where(r)}`);
        }
        if (ids.length) this.replyEventIds.push({ key, where: at(r), from: (v.aggregateVersion as number) - ids.length + 1, ids });
        return this.deliver('replies', r, `${String(v.commandId)}#${k}`, value);
      }
      case this.t.view: {
        this.tiers.noteUpstream(r);
        if (r.value === null) return this.deliver('views', r, r.headers['foldstream.view.version'] ?? `tombstone without a version at ${at(r)}`, canonical(null));
        const v = parse();
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

  /**
   * A projection's store is positioned past its input: in each partition, the last position marker of the changelog
   * is beyond the last record of the input partition that a read_committed reader sees (it may also have moved over
   * the commit markers after it, so the end of the log bounds nothing).
   */
  private positionCheck(store: StoreFindings, log: ChangelogState, input: string): void {
    for (const [partition, last] of this.bands.lastOffsets.get(input) ?? []) {
      const at = log.positions.get(partition)?.[input];
      if (at !== undefined && BigInt(at) > last) continue;
      store.mismatches++;
      if (store.samples.length < 12) store.samples.push(`position marker of partition ${partition} is ${at ?? 'absent'}; ${input}/${partition} has a record at ${last}`);
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
      for (const [commandId, r] of a.replies) commandsModel.set(commandId, canonical({ ...JSON.parse(replyValue(r)), aggregateId: id }));
    }
    for (const kind of ['events', 'replies', 'views'] as const) {
      for (const [key, actual] of this.delivered[kind]) if (!this.accounts.has(key)) compareSequence(out[kind], key, [], actual);
    }
    // the eventIds of each accepted reply are those of the events it caused
    for (const r of this.replyEventIds) {
      const ids = this.eventIds.get(r.key);
      r.ids.forEach((id, i) => {
        const actual = ids?.get(r.from + i);
        if (actual !== undefined && actual !== id) {
          out.replies.wrongValues++;
          if (out.replies.samples.length < 8) out.replies.samples.push(`reply at ${r.where} names event ${id} for version ${r.from + i}; the events topic has ${actual}`);
        }
      });
    }
    const commandsActual = new Map([...this.commandsLog.values].map(([k, v]) => {
      const o = JSON.parse(v) as Obj;
      const ids = Array.isArray(o.eventIds) ? o.eventIds.length : -1;
      return [k, canonical({ commandId: o.commandId, status: o.status, code: o.code ?? null, aggregateVersion: o.aggregateVersion, events: ids, aggregateId: o.aggregateId })];
    }));
    const stores = [
      compareStore('state', this.stateLog.topic, this.stateLog.values, stateModel),
      compareStore('commands', this.commandsLog.topic, commandsActual, commandsModel),
      compareStore('view', this.viewLog.topic, this.viewLog.values, viewModel),
    ];
    this.positionCheck(stores[2]!, this.viewLog, this.t.events);
    const bands = this.bands.finish((store, log, input) => this.positionCheck(store, log, input));
    const tiers = this.tiers.finish();
    stores.push(...bands.stores, ...tiers.stores);
    // the aggregate's stores must be positioned at the end of the commands topic
    for (const log of [this.stateLog, this.commandsLog]) {
      const store = stores.find((s) => s.changelog === log.topic)!;
      for (const [tp, end] of inputEnds) {
        if (end === 0n) continue;
        const partition = Number(tp.slice(tp.lastIndexOf(':') + 1));
        const at = log.positions.get(partition)?.[this.t.commands];
        if (at !== String(end)) {
          store.mismatches++;
          if (store.samples.length < 12) store.samples.push(`position marker of partition ${partition} is ${at ?? 'absent'}; commands end at ${end}`);
        }
      }
    }
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
