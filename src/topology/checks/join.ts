/**
 * Cross-checks of a join (docs/joins.md): which settings each kind takes, one left topic apart from the right one,
 * and co-partitioning: a join by the record key finds both sides of a key in the same partition number only when both
 * topics have the same partition count (producers partition by murmur2 of the key). A stream-table join
 * with `key:` re-keys through a repartition topic sized like the table, and a foreign-key join through its
 * subscription and response topics, so neither needs it.
 */
import type { JoinProcessorDecl } from '../schema.ts';
import type { At, CheckContext } from './context.ts';

export function checkJoin(ctx: CheckContext, p: JoinProcessorDecl, at: At): void {
  ctx.topicRef(at('right'), p.right);
  ctx.topicRef(at('output'), p.output);
  if (Array.isArray(p.input)) {
    if (p.input.length !== 1) ctx.problem(at('input'), `a join reads one left topic, and input names ${p.input.length}`, 'give the left topic as input and the right one as right');
  }
  const left = Array.isArray(p.input) ? p.input[0] : p.input;
  if (left === p.right) ctx.problem(at('right'), `the right side of join "${p.name}" is its left topic "${left}" too`, 'join two different topics');

  const refuse = (field: keyof JoinProcessorDecl, why: string) => {
    if (p[field] !== undefined) ctx.problem(at(field), `a ${p.kind} join takes no \`${field}\`: ${why}`, `remove \`${field}\``);
  };
  switch (p.kind) {
    case 'stream-table':
      refuse('foreignKey', 'the events join the table by the record key, or by `key:`');
      refuse('window', 'a table has one row per key at any time');
      refuse('late', 'an event joins the row its key has when it comes, whatever its time');
      refuse('time', 'an event joins the row its key has when it comes, whatever its time');
      break;
    case 'table-table':
      refuse('key', 'both tables are keyed by their record keys; use kind: foreign-key to join by a field of the left row');
      refuse('foreignKey', 'both tables join by key; use kind: foreign-key to join by a field of the left row');
      refuse('window', 'a table has one row per key at any time');
      refuse('eventTypes', 'both sides are tables of rows, not events');
      refuse('late', 'rows are joined whatever their time');
      refuse('time', 'rows are joined whatever their time');
      break;
    case 'stream-stream':
      refuse('key', 'both streams join by their record keys; re-key them upstream (a window or projection with a key) if they differ');
      refuse('foreignKey', 'only a foreign-key join takes one');
      if (p.window === undefined) ctx.problem(at(), 'a stream-stream join needs `window: { beforeMs, afterMs }`: which times of the two sides join', 'e.g. window: { beforeMs: 0, afterMs: 600000 } for a right event within ten minutes after the left one');
      break;
    case 'foreign-key':
      refuse('key', 'the left rows join the right table by `foreignKey:`');
      refuse('window', 'a table has one row per key at any time');
      refuse('eventTypes', 'both sides are tables of rows, not events');
      refuse('late', 'rows are joined whatever their time');
      refuse('time', 'rows are joined whatever their time');
      if (p.foreignKey === undefined) ctx.problem(at(), 'a foreign-key join needs `foreignKey:`, the right table key a left row refers to', 'e.g. foreignKey: customerId');
      break;
  }
  if ((p.kind === 'table-table' || p.kind === 'foreign-key') && p.steps.length > 0) {
    ctx.problem(at('steps'), `a ${p.kind} join takes no steps: a step that dropped or changed a row would leave its old join row behind`, 'filter or map the rows upstream, in the projection that writes them');
  }
  if (p.join === 'outer' && (p.kind === 'stream-table' || p.kind === 'foreign-key')) {
    ctx.problem(at('join'), `join: outer is for table-table and stream-stream joins; a ${p.kind} join is inner or left`, 'use join: inner or join: left');
  }
  if (p.eventTypes?.right !== undefined && p.kind !== 'stream-stream') {
    ctx.problem(at('eventTypes', 'right'), `the right side of a ${p.kind} join is a table, not events`, 'remove eventTypes.right');
  }

  const byKey = p.kind === 'table-table' || p.kind === 'stream-stream' || (p.kind === 'stream-table' && p.key === undefined);
  const l = left === undefined ? undefined : ctx.t.topics[left];
  const r = ctx.t.topics[p.right];
  if (byKey && l && r && l.partitions !== r.partitions) {
    ctx.problem(
      at('right'),
      `join "${p.name}" joins by record key, and its sides are not co-partitioned: "${left}" has ${l.partitions} partitions, "${p.right}" ${r.partitions}, so a key's left and right records land in different partition numbers`,
      p.kind === 'stream-table'
        ? `give both topics the same partition count, or set \`key:\` (e.g. key: aggregateId) to re-key the events through a repartition topic sized like "${p.right}"`
        : 'give both topics the same partition count',
    );
  }
}
