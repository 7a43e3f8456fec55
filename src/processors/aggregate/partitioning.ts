/**
 * Where an aggregate's events go (DESIGN §6). `aggregate` and `tenant` choose the key (aggregateId, or
 * tenantId:aggregateId) and leave the partition to murmur2 over it, as the Java client does. A partitioner module keeps
 * the key and chooses the partition: `partition(key, event, partitions)`; it must send every event of one aggregate to
 * the same partition, or readers lose the aggregate's order.
 */
import { FoldstreamError } from '../../errors.ts';
import type { EventEnvelope } from '../../serde/envelope.ts';
import type { AggregateProcessorDecl } from '../../topology/schema.ts';
import { loadModule, requireFunction } from '../module-loader.ts';

export type PartitionFn = (key: string, event: EventEnvelope, partitions: number) => number;

export interface Partitioning {
  /** commands carry tenantId and keys are tenantId:aggregateId */
  tenant: boolean;
  /** undefined: murmur2 of the key */
  partition: PartitionFn | undefined;
}

export async function loadPartitioning(baseDir: string, decl: AggregateProcessorDecl): Promise<Partitioning> {
  if (decl.partitioning === 'aggregate') return { tenant: false, partition: undefined };
  if (decl.partitioning === 'tenant') return { tenant: true, partition: undefined };
  const path = decl.partitioning.module;
  const what = `processor "${decl.name}" partitioning`;
  const fn = requireFunction<PartitionFn>(await loadModule(baseDir, path, what), 'partition', what, path);
  return {
    tenant: false,
    partition: (key, event, partitions) => {
      const p = fn(key, event, partitions);
      if (!Number.isInteger(p) || p < 0 || p >= partitions) {
        throw new FoldstreamError('HANDLER_FAILED', `${what}: partition() of "${path}" returned ${String(p)} for key ${JSON.stringify(key)}; the topic has ${partitions} partitions`, {
          hint: 'return an integer from 0 to partitions - 1, the same for every event of an aggregate',
        });
      }
      return p;
    },
  };
}
