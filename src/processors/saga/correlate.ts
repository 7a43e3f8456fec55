/**
 * A saga with `correlate`, first stage: the events of one saga instance come from different aggregates, so from
 * different partitions. This stage evaluates the correlation expression over each event and writes the event, keyed
 * by the saga id, to the saga's repartition topic, where the instances stage finds all of an instance's events in one
 * partition. Events of one aggregate keep their order through it (one task writes them, in order). An event that
 * gives no saga id concerns no instance: dropped and counted.
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue, isPlainObject } from '../../serde/envelope.ts';
import { compileExpression } from '../expressions.ts';
import type { Processor } from '../types.ts';

export function correlateProcessor(o: { saga: string; correlate: string; repartition: string }): Processor {
  const expr = compileExpression(o.correlate, `processor "${o.saga}" correlate`);
  return {
    async process(record, ctx) {
      const v = await expr.evaluate(record.value);
      if (v === undefined || v === null || v === '') return ctx.count('saga_events', { outcome: 'uncorrelated' });
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        throw new FoldstreamError('HANDLER_FAILED', `processor "${o.saga}" correlate: ${JSON.stringify(o.correlate)} gave ${describeValue(v)}, not a saga id`, {
          hint: isPlainObject(v) || Array.isArray(v) ? 'make the expression give one string per event' : 'make the expression give a string',
        });
      }
      ctx.forward(o.repartition, String(v), record.value, { headers: record.headers });
    },
  };
}
