/**
 * The projection processor (and the first stage of a groupBy projection): per view key (the event's record key), the
 * view and the last applied aggregateVersion in the `view` store. An event at or below that version was applied
 * before and is skipped (counted), so replays and duplicates leave the view as it is. Without groupBy the new view
 * goes to the output topic (null: a tombstone); with groupBy the change of group membership goes to the repartition
 * topic instead.
 */
import { VIEW_VERSION_HEADER } from '../input/views.ts';
import { requireFinite } from '../finite.ts';
import type { InputRecord, Processor, ProcessorContext } from '../types.ts';
import { groupChanges, type GroupBy, type GroupMembership } from './group-by.ts';
import type { ProjectedEvent, Projector, View } from './projector.ts';
import { REPLAY_HEADERS, replayControl, type ReplayOutcome } from './replay.ts';

/** Value of the `view` store (docs/wire-formats.md). A deleted view keeps its version, so older events stay skipped. */
export interface StoredView {
  view: View | null;
  version: number;
  /** with groupBy: the group the view is counted in, null when none */
  group?: GroupMembership | null;
  /** a selective replay in progress (replay.ts): the view being rebuilt beside this one, from the run's copied events */
  replay?: { id: string; view: View | null; version: number };
}

export interface ProjectionOptions {
  projector: Projector;
  /** topic name: the view topic, or with groupBy the repartition topic */
  output: string;
  groupBy: GroupBy | undefined;
  /** the projection's replay topic, when it has one (names.ts replays()) */
  replayTopic?: string | undefined;
}

export const versionHeaders = (version: number): { headers?: Record<string, string> } =>
  version > 0 ? { headers: { [VIEW_VERSION_HEADER]: String(version) } } : {};

export function projectionProcessor(o: ProjectionOptions): Processor {
  return {
    async process(record, ctx) {
      if (record.topic === o.replayTopic) return replay(o, record, ctx);
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
      await putView(o, ctx, key, entry, next, applied);
      ctx.count('projection_events', { outcome: 'applied' });
    },
  };
}

/** Stores the new view (keeping a replay in progress) and writes it out: to the view topic, or as group changes. */
async function putView(o: ProjectionOptions, ctx: ProcessorContext, key: string, entry: StoredView | undefined, next: View | null, version: number): Promise<void> {
  const views = ctx.store<StoredView>('view');
  const pending = entry?.replay ? { replay: entry.replay } : {};
  if (o.groupBy) {
    const after = next === null ? undefined : await o.groupBy.membership(next);
    for (const [group, change] of groupChanges(key, entry?.group ?? undefined, after)) ctx.forward(o.output, group, change);
    views.put(key, { view: next, version, group: after ?? null, ...pending });
  } else {
    views.put(key, { view: next, version, ...pending });
    ctx.forward(o.output, key, next, versionHeaders(version));
  }
}

/** A record of the replay topic: begin a shadow view, fold a copied event into it, or swap it in at the end. */
async function replay(o: ProjectionOptions, record: InputRecord, ctx: ProcessorContext): Promise<void> {
  const control = replayControl(record);
  if (control === 'result') return; // our own outcome records
  const key = record.key!;
  const id = record.headers[REPLAY_HEADERS.id] ?? '';
  const views = ctx.store<StoredView>('view');
  const entry = await views.get(key);
  const live: StoredView = entry ?? { view: null, version: 0 };
  const outcome = (what: ReplayOutcome, version: number) => {
    ctx.count('projection_events', { outcome: `replay_${what}` });
    ctx.forward(o.replayTopic!, key, null, {
      partition: record.partition,
      headers: { [REPLAY_HEADERS.control]: 'result', [REPLAY_HEADERS.id]: id, [REPLAY_HEADERS.outcome]: what, [REPLAY_HEADERS.version]: String(version) },
    });
  };
  if (control === 'begin') {
    views.put(key, { ...live, replay: { id, view: null, version: 0 } });
    return;
  }
  const shadow = entry?.replay;
  if (!shadow || shadow.id !== id) {
    // an event or end of a run whose begin this view did not see (a later run began since): nothing to rebuild
    if (control === 'end') outcome('orphan', live.version);
    return;
  }
  if (control === undefined) {
    const event = record.value as ProjectedEvent;
    const version = event.aggregateVersion;
    if (version !== undefined && version <= shadow.version) return;
    const next = await o.projector.project(shadow.view ?? undefined, event, key);
    if (next === undefined) return;
    requireFinite(next, `the view ${JSON.stringify(key)}`);
    views.put(key, { ...live, replay: { id, view: next, version: version ?? shadow.version } });
    ctx.count('projection_events', { outcome: 'replayed' });
    return;
  }
  // end: the shadow holds every event up to upTo; the live view must not be past it
  const upTo = Number(record.headers[REPLAY_HEADERS.upTo] ?? '0');
  const { replay: _done, ...kept } = live;
  if (live.version > upTo) {
    views.put(key, kept);
    outcome('stale', live.version);
    return;
  }
  await putView(o, ctx, key, kept, shadow.view, upTo);
  outcome('rebuilt', upTo);
}
