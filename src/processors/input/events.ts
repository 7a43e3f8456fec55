/** Admission of event records (projections): a valid envelope, keyed as DESIGN §6 says. */
import { aggregateKey, eventProblem, type EventEnvelope } from '../../serde/envelope.ts';
import type { Stage } from '../spec.ts';

export const eventEnvelopeStage: Stage = (record) => {
  const problem = eventProblem(record.value);
  return problem ? { reject: { code: 'ENVELOPE_INVALID', message: problem } } : { record };
};

/** The key must be the aggregate id (or `tenantId:aggregateId`), or the views and their versions would mix aggregates. */
export const eventKeyStage: Stage = (record) => {
  const e = record.value as EventEnvelope;
  const expected = aggregateKey(e.aggregateId, e.tenantId);
  if (record.key === expected) return { record };
  return {
    reject: {
      code: 'KEY_MISMATCH',
      message: `record key ${JSON.stringify(record.key)} differs from ${JSON.stringify(expected)}, the ${e.tenantId ? 'tenantId:aggregateId' : 'aggregateId'} of its envelope`,
    },
  };
};
