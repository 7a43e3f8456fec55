/**
 * The counting workload's processor (`type: custom`): per key, a count in store `counts`, and one output
 * {key, n, seq} per good input, so the outputs of a key must be exactly n = 1..N in order.
 *
 * Input: {"type":"Tick","v":1,"key":<record key>,"seq":<integer ≥ 1>} as JSON. Anything else is refused with a
 * DomainError, which the runtime dead-letters at once (code HANDLER_FAILED, no retries). The verifier models these
 * rules on its own (test/chaos/verify/model-counter.ts); keep the two in step.
 */
import type { InputRecord, ProcessorContext } from '../../../src/processors/types.ts';

class DomainError extends Error {
  override name = 'DomainError';
}

function refuse(why: string): never {
  throw new DomainError(`not a counter record: ${why}`);
}

export async function process(record: InputRecord, ctx: ProcessorContext): Promise<void> {
  if (record.key === null) refuse('the key is null');
  const v = record.value;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) refuse('the value is not an object');
  const o = v as Record<string, unknown>;
  if (o.type !== 'Tick') refuse(`unknown type ${JSON.stringify(o.type)}`);
  if (o.v !== 1) refuse(typeof o.v === 'number' && o.v > 1 ? `version ${o.v} is newer than 1` : 'v must be 1');
  if (typeof o.key !== 'string') refuse('key must be a string');
  if (o.key !== record.key) refuse(`key ${JSON.stringify(o.key)} differs from the record key`);
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 1) refuse('seq must be a safe integer ≥ 1');

  const store = ctx.store<number>('counts');
  const n = ((await store.get(record.key)) ?? 0) + 1;
  store.put(record.key, n);
  ctx.forward('counts', record.key, { key: record.key, n, seq: o.seq });
}
