/**
 * The projection processor (and the first stage of a groupBy projection): per view key (the event's record key), the
 * view and the last applied aggregateVersion in the `view` store. An event at or below that version was applied
 * before and is skipped (counted), so replays and duplicates leave the view as it is. Without groupBy the new view
 * goes to the output topic (null: a tombstone); with groupBy the change of group membership goes to the repartition
 * topic instead.
 */
import { VIEW_VERSION_HEADER } from '../input/views.ts';
import { requireFinite } from '../finite.ts';
import type { Processor } from '../types.ts';
import { groupChanges, type GroupBy, type GroupMembership } from './group-by.ts';
import type { ProjectedEvent, Projector, View } from './projector.ts';

/** Value of the `view` store (docs/wire-formats.md). A deleted view keeps its version, so older events stay skipped. */
export interface StoredView {
  view: View | null;
  version: number;
  /** with groupBy: the group the view is counted in, null when none */
  group?: GroupMembership | null;
}

export interface ProjectionOptions {
  projector: Projector;
  /** topic name: the view topic, or with groupBy the repartition topic */
  output: string;
  groupBy: GroupBy | undefined;
}

export const versionHeaders = (version: number): { headers?: Record<string, string> } =>
  version > 0 ? { headers: { [VIEW_VERSION_HEADER]: String(version) } } : {};

export function projectionProcessor(o: ProjectionOptions): Processor {
  return {
    async process(record, ctx) {
      const event = record.value as ProjectedEvent;
      const key = record.key!;
      const views = ctx.store<StoredView>('view');
      const entry = await views.get(key);
      const version = event.aggregateVersion;
      if (entry && version !== undefined && version <= entry.version) {
        ctx.count('projection_events', { outcome: 'already_applied' });
        return;
      }
      const next = await o.projector.project(entry?.view ?? undefined, event, key);
      if (next === undefined) {
        ctx.count('projection_events', { outcome: 'unknown_type' });
        return;
      }
      requireFinite(next, `the view ${JSON.stringify(key)}`);
      const applied = version ?? entry?.version ?? 0;
      if (o.groupBy) {
        const after = next === null ? undefined : await o.groupBy.membership(next);
        for (const [group, change] of groupChanges(key, entry?.group ?? undefined, after)) ctx.forward(o.output, group, change);
        views.put(key, { view: next, version: applied, group: after ?? null });
      } else {
        views.put(key, { view: next, version: applied });
        ctx.forward(o.output, key, next, versionHeaders(applied));
      }
      ctx.count('projection_events', { outcome: 'applied' });
    },
  };
}
