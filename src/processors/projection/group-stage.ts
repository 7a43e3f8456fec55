/**
 * groupBy, second stage (its own runtime processor `<processor>-group`): folds the repartitioned membership changes
 * into one view per group — `{ key, <count fields>: members, <sum fields>: sums }` — in the `groups` store and on the
 * output topic. A group with no members left is deleted (tombstone) but keeps its version in the store.
 */
import { requireFinite } from '../finite.ts';
import type { Processor } from '../types.ts';
import type { GroupBy, GroupChange } from './group-by.ts';
import { versionHeaders } from './processor.ts';
import type { View } from './projector.ts';

/** Value of the `groups` store (docs/wire-formats.md). */
export interface StoredGroup {
  view: View | null;
  members: number;
  /** changes applied to the group, counting from 1 */
  version: number;
}

export function groupProcessor(o: { groupBy: GroupBy; output: string }): Processor {
  return {
    async process(record, ctx) {
      const change = record.value as GroupChange;
      const key = record.key!;
      const groups = ctx.store<StoredGroup>('groups');
      const entry = await groups.get(key);
      const members = (entry?.members ?? 0) + change.members;
      const version = (entry?.version ?? 0) + 1;
      if (members <= 0) {
        groups.put(key, { view: null, members: 0, version });
        ctx.forward(o.output, key, null, versionHeaders(version));
      } else {
        const view: View = { key };
        for (const [field, a] of o.groupBy.aggregations) {
          const before = typeof entry?.view?.[field] === 'number' ? (entry.view[field] as number) : 0;
          view[field] = a.kind === 'count' ? members : before + (change.sums[field] ?? 0);
        }
        requireFinite(view, `the group view ${JSON.stringify(key)}`);
        groups.put(key, { view, members, version });
        ctx.forward(o.output, key, view, versionHeaders(version));
      }
      ctx.count('projection_events', { outcome: 'applied' });
    },
  };
}
