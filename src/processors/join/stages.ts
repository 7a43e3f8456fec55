/**
 * What runs in front of a join (docs/joins.md): each record's side is its topic. Records of a stream side must be
 * event envelopes (upcast, and of the side's `eventTypes`); records of a table side are rows, any value, a tombstone
 * deleting the key's row. A stream-stream join also reads each record's time here and sends late records away
 * (dropped and counted, or dead-lettered). With `key:`, a stream-table join's first stage re-keys the events through
 * the repartition topic.
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue, isPlainObject } from '../../serde/envelope.ts';
import { compileExpression } from '../expressions.ts';
import type { Stage } from '../spec.ts';
import type { Processor } from '../types.ts';
import { eventTimeOf } from '../window/stages.ts';
import { STREAM_TIME_KEY } from '../window/store-keys.ts';

/** Runs `stages` only on records of `topics` (the stream sides of a join); other records pass as they are. */
export function onTopics(topics: Set<string>, stages: Stage[]): Stage {
  return async (record, ctx) => {
    if (!topics.has(record.topic)) return { record };
    let r = record;
    for (const stage of stages) {
      const out = await stage(r, ctx);
      if (!('record' in out)) return out;
      r = out.record;
    }
    return { record: r };
  };
}

export function eventTypeStage(types: string[] | undefined): Stage[] {
  if (types === undefined) return [];
  const wanted = new Set(types);
  return [
    (record, ctx) => {
      if (wanted.has((record.value as { eventType: string }).eventType)) return { record };
      ctx.count('join_records', { outcome: 'ignored' });
      return { drop: true, reason: 'event type not joined' };
    },
  ];
}

/** Records foldstream writes to a join's internal topics; anyone can write them, so they are checked. */
export function internalRecordStage(topic: string, what: string, valid: (v: unknown) => boolean): Stage {
  return (record) => {
    if (record.topic !== topic || valid(record.value)) return { record };
    return { reject: { code: 'ENVELOPE_INVALID', message: `a join's ${what} record is not one foldstream writes: got ${describeValue(record.value)}` } };
  };
}

/** Stream-stream: the record's time, and whether it is late (more than graceMs behind the join's stream time). */
export function joinTimeStage(o: { processor: string; time: 'event' | 'record'; graceMs: number; late: 'drop' | 'dlq' }): Stage {
  const timeOf = eventTimeOf(o.time);
  return async (record, ctx) => {
    const t = timeOf(record);
    if (t === undefined) {
      const what = o.time === 'event' ? `its timestamp ${describeValue(isPlainObject(record.value) ? record.value.timestamp : undefined)}` : `its record timestamp ${record.timestamp}`;
      return { reject: { code: 'ENVELOPE_INVALID', message: `join "${o.processor}" joins records by time, and ${what} is not a time (ISO-8601, not before 1970)` } };
    }
    const streamTime = await ctx.store<number>('join-index').get(STREAM_TIME_KEY);
    if (streamTime === undefined || t >= streamTime - o.graceMs) return { record };
    const message = `record time ${new Date(t).toISOString()} is more than graceMs (${o.graceMs}) behind the stream time ${new Date(streamTime).toISOString()} of join "${o.processor}": records it would have joined may be gone`;
    if (o.late === 'dlq') return { reject: { code: 'JOIN_RECORD_LATE', message } };
    ctx.count('join_records', { outcome: 'late' });
    return { drop: true, reason: 'late' };
  };
}

/** A string key from an expression's value, or undefined when it gave nothing; throws for a value that is no key. */
export function keyOf(v: unknown, processor: string, what: string, source: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
    throw new FoldstreamError('HANDLER_FAILED', `join "${processor}" ${what}: ${JSON.stringify(source)} gave ${describeValue(v)}, not a key`, {
      hint: 'make the expression give one string per record',
    });
  }
  return String(v);
}

/** First stage of a stream-table join with `key`: the event, keyed by the table key, to the repartition topic. */
export function rekeyProcessor(o: { processor: string; key: string; repartition: string }): Processor {
  const expr = compileExpression(o.key, `join "${o.processor}" key`);
  return {
    async process(record, ctx) {
      const key = keyOf(await expr.evaluate(record.value), o.processor, 'key', o.key);
      if (key === undefined) return ctx.count('join_records', { outcome: 'unkeyed' });
      ctx.forward(o.repartition, key, record.value, { headers: record.headers });
    },
  };
}
