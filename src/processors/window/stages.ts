/**
 * What runs in front of the window processor: the event-type filter, re-keying by the `key` expression (the first
 * stage of a window processor with `key`, through the repartition topic as a correlated saga does), and the time
 * stage, which reads each record's time and sends late records away (dropped and counted, or dead-lettered).
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue, isPlainObject } from '../../serde/envelope.ts';
import { compileExpression } from '../expressions.ts';
import type { Stage } from '../spec.ts';
import type { Processor } from '../types.ts';
import type { WindowKind } from './kinds.ts';
import { STREAM_TIME_KEY } from './store-keys.ts';

/** The record's time: the envelope's `timestamp` (time: event) or the Kafka record timestamp (time: record). */
export function eventTimeOf(time: 'event' | 'record'): (record: { value: unknown; timestamp: number }) => number | undefined {
  if (time === 'record') return (r) => (Number.isSafeInteger(r.timestamp) && r.timestamp >= 0 ? r.timestamp : undefined);
  return (r) => {
    const ts = isPlainObject(r.value) ? r.value.timestamp : undefined;
    if (typeof ts !== 'string') return undefined;
    const t = Date.parse(ts);
    return Number.isFinite(t) && t >= 0 ? t : undefined;
  };
}

export function eventTypeStage(types: string[]): Stage {
  const wanted = new Set(types);
  return (record, ctx) => {
    if (wanted.has((record.value as { eventType: string }).eventType)) return { record };
    ctx.count('window_records', { outcome: 'ignored' });
    return { drop: true, reason: 'event type not windowed' };
  };
}

/** The window stage's admission of repartitioned records: foldstream writes them, but anyone can write the topic. */
export const repartitionedStage: Stage = (record) =>
  isPlainObject(record.value)
    ? { record }
    : { reject: { code: 'ENVELOPE_INVALID', message: `a window repartition record must hold an event, got ${describeValue(record.value)}` } };

export function timeStage(o: { processor: string; time: 'event' | 'record'; kind: WindowKind; late: 'drop' | 'dlq' }): Stage {
  const timeOf = eventTimeOf(o.time);
  return async (record, ctx) => {
    const t = timeOf(record);
    if (t === undefined) {
      const what = o.time === 'event' ? `its timestamp ${describeValue(isPlainObject(record.value) ? record.value.timestamp : undefined)}` : `its record timestamp ${record.timestamp}`;
      return { reject: { code: 'ENVELOPE_INVALID', message: `processor "${o.processor}" windows records by time, and ${what} is not a time (ISO-8601, not before 1970)` } };
    }
    const streamTime = await ctx.store<number>('window-index').get(STREAM_TIME_KEY);
    if (streamTime === undefined || !o.kind.late(t, streamTime)) return { record };
    const message = `record time ${new Date(t).toISOString()} is more than graceMs (${o.kind.graceMs}) behind the stream time ${new Date(streamTime).toISOString()} of processor "${o.processor}": every window it belongs to has closed`;
    if (o.late === 'dlq') return { reject: { code: 'WINDOW_RECORD_LATE', message } };
    ctx.count('window_records', { outcome: 'late' });
    return { drop: true, reason: 'late' };
  };
}

/** First stage of a window processor with `key`: the record, keyed by the expression, to the repartition topic. */
export function rekeyProcessor(o: { processor: string; key: string; repartition: string }): Processor {
  const expr = compileExpression(o.key, `processor "${o.processor}" key`);
  return {
    async process(record, ctx) {
      const v = await expr.evaluate(record.value);
      if (v === undefined || v === null || v === '') return ctx.count('window_records', { outcome: 'unkeyed' });
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        throw new FoldstreamError('HANDLER_FAILED', `processor "${o.processor}" key: ${JSON.stringify(o.key)} gave ${describeValue(v)}, not a window key`, {
          hint: 'make the expression give one string per event',
        });
      }
      // the record timestamp goes along (forward's default), so time: record windows by the original record's time
      ctx.forward(o.repartition, String(v), record.value, { headers: record.headers });
    },
  };
}
