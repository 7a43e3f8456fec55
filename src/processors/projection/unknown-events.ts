/** Event types a projection has no rule for (DESIGN §8): ignored and counted, or also logged, or dead-lettered. */
import type { ProjectionProcessorDecl } from '../../topology/schema.ts';
import type { Stage } from '../spec.ts';

export function unknownEventStage(types: Set<string>, policy: ProjectionProcessorDecl['unknownEvents'], processor: string): Stage {
  return (record, ctx) => {
    const type = (record.value as { eventType: string }).eventType;
    if (types.has(type)) return { record };
    if (policy === 'dlq') return { reject: { code: 'EVENT_TYPE_UNKNOWN', message: `processor "${processor}" has no rule for event type "${type}"` } };
    ctx.count('projection_events', { outcome: 'unknown_type' });
    if (policy === 'warn') {
      ctx.log.warn({ event: 'projection.unknown_event_type', processor, eventType: type, topic: record.topic, partition: record.partition, offset: record.offset });
    }
    return { drop: true, reason: 'unknown event type' };
  };
}
