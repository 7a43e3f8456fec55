/**
 * Chaining: a projection that reads another projection's view topic sees each view record as an event, so the same
 * `on:` rules, module contract, version idempotency and groupBy apply. A view is `ViewUpdated` with the view as
 * `data`; a tombstone is `ViewDeleted`. The upstream projection's version header becomes `aggregateVersion`.
 */
import { describeValue, isPlainObject, type EventEnvelope } from '../../serde/envelope.ts';
import type { Stage } from '../spec.ts';

/** Header on every view record foldstream writes: the view's version (docs/wire-formats.md). */
export const VIEW_VERSION_HEADER = 'foldstream.view.version';

export const VIEW_UPDATED = 'ViewUpdated';
export const VIEW_DELETED = 'ViewDeleted';

/** A synthetic event; aggregateVersion is absent when the record has no version header (then it always applies). */
export type ViewEvent = Omit<EventEnvelope, 'aggregateVersion' | 'data'> & { aggregateVersion?: number; data: Record<string, unknown> | null };

export const viewInputStage: Stage = (record) => {
  const view = record.value;
  if (view !== null && !isPlainObject(view)) {
    return { reject: { code: 'ENVELOPE_INVALID', message: `a view record must hold an object or be a tombstone, got ${describeValue(view)}` } };
  }
  const header = record.headers[VIEW_VERSION_HEADER];
  const version = header === undefined ? undefined : Number(header);
  const event: ViewEvent = {
    eventId: `${record.topic}/${record.partition}/${record.offset}`,
    eventType: view === null ? VIEW_DELETED : VIEW_UPDATED,
    eventVersion: 1,
    aggregateType: record.topic,
    aggregateId: record.key!,
    timestamp: new Date(record.timestamp).toISOString(),
    data: view,
  };
  if (version !== undefined && Number.isSafeInteger(version) && version >= 1) event.aggregateVersion = version;
  return { record: { ...record, value: event } };
};
