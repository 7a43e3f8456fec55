/** Admission of command records (aggregates): a valid envelope, keyed as the aggregate's partitioning says. */
import { aggregateKey, commandProblem, type CommandEnvelope } from '../../serde/envelope.ts';
import type { Stage } from '../spec.ts';

/** `tenant`: commands carry tenantId, which is part of the key of the aggregate's records. */
export function commandEnvelopeStage(tenant: boolean): Stage {
  return (record) => {
    const problem = commandProblem(record.value);
    if (problem) return { reject: { code: 'ENVELOPE_INVALID', message: problem } };
    if (tenant && !(record.value as CommandEnvelope).tenantId) {
      return { reject: { code: 'ENVELOPE_INVALID', message: 'command envelope: missing field "tenantId" (the aggregate is partitioned by tenant)' } };
    }
    return { record };
  };
}

export function commandKey(command: CommandEnvelope, tenant: boolean): string {
  return aggregateKey(command.aggregateId, tenant ? command.tenantId : undefined);
}

/** A command keyed differently would reach a task that does not own its aggregate's state. */
export function commandKeyStage(tenant: boolean): Stage {
  return (record) => {
    const expected = commandKey(record.value as CommandEnvelope, tenant);
    if (record.key === expected) return { record };
    return {
      reject: {
        code: 'KEY_MISMATCH',
        message: `record key ${JSON.stringify(record.key)} differs from ${JSON.stringify(expected)}, the ${tenant ? 'tenantId:aggregateId' : 'aggregateId'} of the command`,
      },
    };
  };
}
