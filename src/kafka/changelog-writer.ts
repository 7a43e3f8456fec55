/**
 * Appends records to a task's changelogs in one transaction under the task's own transactional id (`foldstream
 * rebuild`). InitProducerId with the task's id fences any instance of the task still alive and completes or aborts
 * its open transaction; an instance that starts the task while the rebuild writes fences the rebuild instead, whose
 * commit then fails and whose records are aborted: a task's stores are rebuilt whole or not at all.
 */
import type { Kafka, Producer } from 'kafkajs';
import { FoldstreamError } from '../errors.ts';
import type { OutgoingRecord } from './types.ts';

const CHUNK = 500;

export async function writeInTransaction(kafka: Kafka, transactionalId: string, records: OutgoingRecord[], opts: { transactionTimeoutMs?: number; onSent?: (sent: number) => void } = {}): Promise<void> {
  const producer: Producer = kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    transactionTimeout: opts.transactionTimeoutMs ?? 600_000,
  });
  await producer.connect();
  try {
    const txn = await producer.transaction();
    try {
      for (let i = 0; i < records.length; i += CHUNK) {
        const byTopic = new Map<string, OutgoingRecord[]>();
        for (const r of records.slice(i, i + CHUNK)) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
        await txn.sendBatch({
          acks: -1,
          topicMessages: [...byTopic].map(([topic, rs]) => ({
            topic,
            messages: rs.map((r) => ({ key: r.key, value: r.value, partition: r.partition, ...(r.headers ? { headers: r.headers } : {}) })),
          })),
        });
        opts.onSent?.(Math.min(records.length, i + CHUNK));
      }
      await txn.commit();
    } catch (e) {
      await txn.abort().catch(() => undefined);
      const fenced = /fenc|epoch/i.test((e as Error).message ?? '') || (e as { type?: string }).type === 'INVALID_PRODUCER_EPOCH';
      throw new FoldstreamError('TRANSACTION_FAILED', `the rebuild's transaction ${transactionalId} failed: ${(e as Error).message}`, {
        hint: fenced ? 'an instance of the app started the task meanwhile and fenced the rebuild: stop every instance and run rebuild again (nothing of this task was written)' : 'nothing of this task was written; run rebuild again',
        cause: e,
      });
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}
