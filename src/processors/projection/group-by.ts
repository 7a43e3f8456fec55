/**
 * groupBy, first stage: each aggregate's view belongs to at most one group (its key, a JSONata expression over the
 * view) and contributes to that group's aggregations. When an event moves a view, the first stage sends the change
 * to the repartition topic keyed by group: -1 member (and minus its sums) to the old group, +1 (plus its sums) to the
 * new one, or a delta of the sums when the group stays. Both changes of one aggregate come from the same task in
 * order, so a group never sees a removal before the addition it undoes.
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue, isPlainObject } from '../../serde/envelope.ts';
import type { GroupByDecl } from '../../topology/schema.ts';
import { compileExpression, type Expression } from '../expressions.ts';
import type { Stage } from '../spec.ts';
import type { View } from './projector.ts';

/** Which group a view is in and what it adds to the group's sums; kept with the view (docs/wire-formats.md). */
export interface GroupMembership {
  key: string;
  sums: Record<string, number>;
}

/** A repartition record's value; its key is the group key. */
export interface GroupChange {
  /** the view key (aggregate) that changed */
  source: string;
  members: -1 | 0 | 1;
  sums: Record<string, number>;
}

export type Aggregation = { kind: 'count' } | { kind: 'sum'; expr: Expression };

export interface GroupBy {
  aggregations: [string, Aggregation][];
  membership(view: View): Promise<GroupMembership | undefined>;
}

export function compileGroupBy(decl: GroupByDecl, processor: string): GroupBy {
  const where = `processor "${processor}" groupBy`;
  const d = typeof decl === 'string' ? { key: decl, aggregate: { count: 'count' as const } } : decl;
  const key = compileExpression(d.key, `${where}.key`);
  const aggregations = Object.entries(d.aggregate).map(([field, a]): [string, Aggregation] =>
    a === 'count' ? [field, { kind: 'count' }] : [field, { kind: 'sum', expr: compileExpression(a.sum, `${where}.aggregate.${field}.sum`) }],
  );
  return {
    aggregations,
    async membership(view) {
      const k = groupKey(await key.evaluate(view));
      if (k === undefined) return undefined;
      const sums: Record<string, number> = {};
      for (const [field, a] of aggregations) {
        if (a.kind !== 'sum') continue;
        const v = await a.expr.evaluate(view);
        if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isFinite(v))) {
          throw new FoldstreamError('HANDLER_FAILED', `${where}.aggregate.${field}.sum: expected a number, got ${describeValue(v)}`, {
            hint: 'make the sum expression give a number (or nothing, which counts as 0)',
          });
        }
        sums[field] = (v as number | undefined | null) ?? 0;
      }
      return { key: k, sums };
    },
  };
}

/** Group keys are record keys: strings; other values are written as JSON, and no value means no group. */
function groupKey(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** The repartition records for a view moving from `before` to `after`, as [group key, change]. */
export function groupChanges(source: string, before: GroupMembership | undefined, after: GroupMembership | undefined): [string, GroupChange][] {
  if (before && after && before.key === after.key) {
    const sums: Record<string, number> = {};
    let changed = false;
    for (const [f, v] of Object.entries(after.sums)) {
      sums[f] = v - (before.sums[f] ?? 0);
      if (sums[f] !== 0) changed = true;
    }
    return changed ? [[after.key, { source, members: 0, sums }]] : [];
  }
  const out: [string, GroupChange][] = [];
  if (before) out.push([before.key, { source, members: -1, sums: Object.fromEntries(Object.entries(before.sums).map(([f, v]) => [f, -v])) }]);
  if (after) out.push([after.key, { source, members: 1, sums: { ...after.sums } }]);
  return out;
}

/** The group stage's admission: repartition records are foldstream's own, but the topic is writable by anyone. */
export const groupChangeStage: Stage = (record) => {
  const v = record.value;
  const ok =
    isPlainObject(v) &&
    typeof v.source === 'string' &&
    (v.members === -1 || v.members === 0 || v.members === 1) &&
    isPlainObject(v.sums) &&
    Object.values(v.sums).every((n) => typeof n === 'number' && Number.isFinite(n));
  if (ok) return { record };
  return { reject: { code: 'ENVELOPE_INVALID', message: `a repartition record must be { source, members: -1 | 0 | 1, sums: { field: number } }, got ${describeValue(v)}` } };
};
