/**
 * Model of a projection with `groupBy` across both of its stages (docs/projections.md, groupBy; records and stores as
 * docs/wire-formats.md describes them), shared by the workloads that have one (bank: balance-bands; orders:
 * order-sizes). A workload's model tells it, per aggregate and in the aggregate's order, the first stage's view after
 * each event (or null once the view is deleted) and the group that view is in: { key, sums }. The groupBy of every
 * such projection sums `versionSquares` (version²) besides its own fields, so that every repartition record names the
 * event that caused it (a join at version v adds v², a leave at v removes (v-1)², a stay adds 2v - 1).
 *
 * What the output semantics allow to check, and what not:
 *
 * - **Repartition topic (first stage), every record exactly once, in order.** The records one aggregate causes are
 *   deterministic (the model's per-aggregate events), and all records of one (group, aggregate) pair are in one
 *   partition (the group's) in the order the aggregate's events were applied; records of different aggregates, or of
 *   one aggregate to different groups, have no order between them that the model could predict. So the check is per
 *   (group, aggregate): each predicted change once, in order, with its value, in the group's murmur2 partition. The
 *   versionSquares sum makes every repartition record name the event version that caused it (changeLabel), so a
 *   re-sent change is counted as a duplicate and a lost one as a loss, not as a shifted sequence.
 * - **Grouped view topic (second stage), every record exactly once, in order.** One record per change applied to a
 *   group, with header foldstream.view.version = 1, 2, ... N, N the number of changes committed to the group (which
 *   the first check ties to the model). Its *values* in between depend on how the changes of different aggregates
 *   interleave in the repartition partition (the tasks of the first stage commit independently), so they are not
 *   predicted from the input: they are predicted from the repartition log as committed (read by the verifier's own
 *   reader, which decides commits from the markers, in offset order: the order the group stage reads it): version k
 *   must be the fold of the group's first k committed changes (a group with no members is a tombstone). With the
 *   first check this covers both stages: the log holds each predicted change once, and the group stage applied each
 *   committed change once, in order. A duplicate or a loss in the view topic shows as such (versions repeated or
 *   missing); a change applied twice, skipped, or applied without being committed shows as a wrong value at every
 *   later version, and the first samples compare, per group, the versions written with the changes committed.
 * - **Final values.** The last record per group on the view topic (the compacted topic read as a table: a tombstone
 *   deletes) equals the model's group {key, <count field>, <sums>}: counts and sums do not depend on the interleaving,
 *   so the final value is deterministic even where the intermediate ones are not. Groups empty at the end must be
 *   tombstones (absent).
 * - **Stores**, read through their changelogs: `view` of the first stage ({view, version, group}) and `groups` of the
 *   second ({view, members, version: N}) equal to the model; the last position marker of each changelog partition at
 *   or past the last record of its input partition (events, repartition). The markers are not compared with the end
 *   of the log itself: a transactional input ends in commit markers the position may or may not have moved over.
 * - **Dead letters**: the first stage gets the bad events its workload predicts; the group stage none (its input is
 *   foldstream's own: a repartition record it would refuse is expected in its DLQ, and is wrong in the repartition
 *   check anyway).
 * Not checkable: a transient state of a group that no record shows (the group stage writes a record per change, so
 * there is none), and the interleaving itself (any order of different aggregates' changes is correct).
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import { canonical, checkPartition, compareSequence, compareStore, emptySequenceFindings, type Actual, type Expected, type SequenceFindings, type StoreFindings, viewActual } from './compare.ts';
import { DlqCheck, type DlqFindings } from './dlq.ts';
import type { Verdict } from './model.ts';
import type { VRecord } from './read-topics.ts';
import { ChangelogState } from './store.ts';
import { at, changelogName, dlqName, groupStageName, repartitionName, where } from './wire.ts';

type Obj = Record<string, unknown>;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The field every chaos groupBy sums (version²), which makes each repartition record name its event version. */
export const VERSION_SQUARES = 'versionSquares';

/** docs/wire-formats.md, the `view` store with groupBy: the group a view counts in, and its sums. */
export interface Membership {
  key: string;
  sums: Record<string, number>;
}

/** docs/wire-formats.md, "Repartition": a record's value; its key is the group. */
interface Change {
  source: string;
  members: -1 | 0 | 1;
  sums: Record<string, number>;
}

export interface GroupBySpec {
  app: string;
  /** the projection's name (its first stage) */
  processor: string;
  /** the grouped view topic */
  output: string;
  /** the first stage's input (the events topic) */
  input: string;
  partitions: number;
  /** the name of the `count` aggregation in the group view */
  countField: string;
  /** the `sum` aggregations, versionSquares included, in the order the group view lists them */
  sumFields: string[];
  /** prefix of the stats this check reports: `<p>s`, `<p>Joins`, `<p>Leaves`, `<p>Stays`, ... */
  statsPrefix: string;
}

/** The repartition records of one view change (docs/projections.md, groupBy): leave (-1), join (+1), or stay (0, sum deltas, only when one is not 0). */
function groupChanges(source: string, before: Membership | undefined, after: Membership | undefined): [string, Change][] {
  if (before && after && before.key === after.key) {
    const sums = Object.fromEntries(Object.keys(after.sums).map((f) => [f, after.sums[f]! - (before.sums[f] ?? 0)]));
    return Object.values(sums).some((d) => d !== 0) ? [[after.key, { source, members: 0, sums }]] : [];
  }
  const out: [string, Change][] = [];
  if (before) out.push([before.key, { source, members: -1, sums: Object.fromEntries(Object.entries(before.sums).map(([f, v]) => [f, -v])) }]);
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
  const sq = c.sums[VERSION_SQUARES];
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

interface GroupModel {
  members: number;
  sums: Record<string, number>;
  /** changes the model sends to the group: the group's final version */
  changes: number;
}

export class GroupByCheck {
  readonly repartition: string;
  readonly dlq: DlqCheck;
  readonly groupDlq: DlqCheck;
  readonly viewLog: ChangelogState;
  readonly groupsLog: ChangelogState;
  readonly stage: string;
  /** aggregate → its first-stage view (null once deleted), version and group */
  private readonly sources = new Map<string, { group: Membership | undefined; view: Obj | null; version: number }>();
  private readonly groups = new Map<string, GroupModel>();
  /** "group ← aggregate" → predicted changes, in the aggregate's order */
  private readonly expectedChanges = new Map<string, Expected[]>();
  private readonly deliveredChanges = new Map<string, Actual[]>();
  /** group → its committed changes in repartition offset order (the group stage's input, as it read it) */
  private readonly log = new Map<string, { change: Change; where: string }[]>();
  private readonly deliveredViews = new Map<string, Actual[]>();
  /** the view topic read as a table: group → last value */
  private readonly lastViews = new Map<string, string>();
  /** per input topic and partition, the offset of the last committed record (for the position markers) */
  readonly lastOffsets = new Map<string, Map<number, bigint>>();
  private readonly extra = { repartition: emptySequenceFindings(), views: emptySequenceFindings() };
  private readonly changeKinds = { joins: 0, leaves: 0, stays: 0 };
  /** leaves caused by a deleted view */
  private leavesOnDelete = 0;

  constructor(private readonly s: GroupBySpec) {
    this.stage = groupStageName(s.processor);
    this.repartition = repartitionName(s.app, s.processor);
    this.dlq = new DlqCheck(dlqName(s.app, s.processor), s.processor);
    this.groupDlq = new DlqCheck(dlqName(s.app, this.stage), this.stage);
    this.viewLog = new ChangelogState(changelogName(s.app, s.processor, 'view'));
    this.groupsLog = new ChangelogState(changelogName(s.app, this.stage, 'groups'));
  }

  get topics(): string[] {
    return [this.s.output, this.repartition, this.dlq.topic, this.groupDlq.topic, this.viewLog.topic, this.groupsLog.topic];
  }

  noteOffset(r: VRecord): void {
    const m = this.lastOffsets.get(r.topic) ?? new Map<number, bigint>();
    if ((m.get(r.partition) ?? -1n) < r.offset) m.set(r.partition, r.offset);
    this.lastOffsets.set(r.topic, m);
  }

  /** The aggregate's first-stage view after one of its events (null: deleted) and the group it is in then. */
  onEvent(source: string, view: Obj | null, version: number, group: Membership | undefined): void {
    const a = this.sources.get(source) ?? { group: undefined, view: null, version: 0 };
    for (const [key, change] of groupChanges(source, a.group, group)) {
      const pair = `${key} ← ${source}`;
      const list = this.expectedChanges.get(pair) ?? [];
      list.push({ id: `v${version}${sign(change.members)}`, value: canonical(change) });
      this.expectedChanges.set(pair, list);
      const g = this.groups.get(key) ?? { members: 0, sums: Object.fromEntries(this.s.sumFields.map((f) => [f, 0])), changes: 0 };
      g.members += change.members;
      for (const f of this.s.sumFields) g.sums[f]! += change.sums[f] ?? 0;
      g.changes++;
      this.groups.set(key, g);
      this.changeKinds[change.members === 1 ? 'joins' : change.members === -1 ? 'leaves' : 'stays']++;
      if (view === null) this.leavesOnDelete++;
    }
    this.sources.set(source, { group, view, version });
  }

  /** true when the record was one of this processor's topics */
  onOutput(r: VRecord): boolean {
    switch (r.topic) {
      case this.repartition: {
        this.noteOffset(r);
        checkPartition(this.extra.repartition, r, this.s.partitions);
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
      case this.s.output: {
        checkPartition(this.extra.views, r, this.s.partitions);
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

  private groupView(key: string, members: number, sums: Record<string, number>): Obj | null {
    return members > 0 ? { key, [this.s.countField]: members, ...Object.fromEntries(this.s.sumFields.map((f) => [f, sums[f] ?? 0])) } : null;
  }

  finish(positionCheck: (store: StoreFindings, log: ChangelogState, input: string) => void): {
    outputs: Record<string, SequenceFindings>;
    stores: StoreFindings[];
    dlq: DlqFindings[];
    stats: Record<string, number>;
  } {
    const p = this.s.processor;
    // first stage: per (group, aggregate), each predicted change once and in order
    const repartition = this.extra.repartition;
    for (const [pair, expected] of this.expectedChanges) compareSequence(repartition, pair, expected, this.deliveredChanges.get(pair) ?? []);
    for (const [pair, actual] of this.deliveredChanges) if (!this.expectedChanges.has(pair)) compareSequence(repartition, pair, [], actual);

    // second stage: per group, versions 1..N, version k the fold of the first k committed changes
    const views = this.extra.views;
    // first, per group, how many changes the group stage applied against how many the repartition log committed
    for (const [key, actual] of this.deliveredViews) {
      const applied = actual.reduce((n, a) => Math.max(n, Number(a.id) || 0), 0);
      const committed = this.log.get(key)?.length ?? 0;
      if (applied !== committed && views.samples.length < 4) views.samples.push(`group ${key}: the group stage wrote versions up to ${applied}; the repartition log committed ${committed} changes to it`);
    }
    let tombstones = 0;
    const zero = () => Object.fromEntries(this.s.sumFields.map((f) => [f, 0]));
    for (const [key, entries] of this.log) {
      const expected: Expected[] = [];
      let state = { members: 0, sums: zero() };
      for (const { change, where: w } of entries) {
        const members = state.members + change.members;
        if (members < 0) {
          repartition.outOfOrder++;
          if (repartition.samples.length < 8) repartition.samples.push(`group ${key} below 0 members at ${w}: a removal before the addition it undoes`);
        }
        if (members <= 0) {
          state = { members: 0, sums: zero() };
          tombstones++;
        } else {
          state = { members, sums: Object.fromEntries(this.s.sumFields.map((f) => [f, state.sums[f]! + (change.sums[f] ?? 0)])) };
        }
        expected.push({ id: String(expected.length + 1), value: canonical(this.groupView(key, state.members, state.sums)) });
      }
      // predicted from the log as committed: a change the first stage lost or doubled is the repartition check's
      // finding (and the final value's), not the group stage's
      compareSequence(views, key, expected, this.deliveredViews.get(key) ?? []);
    }
    for (const [key, actual] of this.deliveredViews) if (!this.log.has(key)) compareSequence(views, key, [], actual);

    // final values, and the stores
    const finalModel = new Map<string, string>();
    const groupsModel = new Map<string, string>();
    for (const [key, g] of this.groups) {
      const view = this.groupView(key, g.members, g.sums);
      if (view) finalModel.set(key, canonical(view));
      groupsModel.set(key, canonical({ view, members: g.members, version: g.changes }));
    }
    const viewModel = new Map<string, string>();
    for (const [id, a] of this.sources) viewModel.set(id, canonical({ view: a.view, version: a.version, group: a.group ?? null }));
    const stores = [
      compareStore(`${p} output (last value per group)`, this.s.output, this.lastViews, finalModel),
      compareStore(`${p} view`, this.viewLog.topic, this.viewLog.values, viewModel),
      compareStore(`${this.stage} groups`, this.groupsLog.topic, this.groupsLog.values, groupsModel),
    ];
    positionCheck(stores[1]!, this.viewLog, this.s.input);
    positionCheck(stores[2]!, this.groupsLog, this.repartition);

    const x = this.s.statsPrefix;
    const stats: Record<string, number> = {
      [`${x}s`]: this.groups.size,
      [`${x}sEmptyAtEnd`]: [...this.groups.values()].filter((g) => g.members === 0).length,
      [`${x}LeavesOnDelete`]: this.leavesOnDelete,
      [`${x}Joins`]: this.changeKinds.joins,
      [`${x}Leaves`]: this.changeKinds.leaves,
      [`${x}Stays`]: this.changeKinds.stays,
      [`${x}Tombstones`]: tombstones,
    };
    return { outputs: { [this.repartition]: repartition, [this.s.output]: views }, stores, dlq: [this.dlq.finish(), this.groupDlq.finish()], stats };
  }
}
