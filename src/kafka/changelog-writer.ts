/**
 * Appends records to a task's changelogs in one transaction under the task's own transactional id (`foldstream
 * rebuild`). Opening it runs InitProducerId with the task's id before anything is read: that fences any instance of
 * the task still alive and completes or aborts the task's open transaction, so what is read afterwards (read_committed)
 * is final — a transaction that was committing when the app stopped has its markers by then, and one that was not is
 * gone. An instance that starts the task while the rebuild works fences the rebuild instead, whose commit then fails
 * and whose records are aborted: a task's stores are rebuilt whole or not at all.
 */
import type { Kafka, Producer, Transaction } from 'kafkajs';
import { FoldstreamError } from '../errors.ts';
import type { OutgoingRecord } from './types.ts';

const CHUNK = 500;

export class FencingChangelogWriter {
  private ended = false;

  private constructor(
    readonly transactionalId: string,
    private readonly producer: Producer,
    private readonly txn: Transaction,
  ) {}

  /** Connects and runs InitProducerId for the task's transactional id (fencing), then begins a transaction. */
  static async open(kafka: Kafka, transactionalId: string, transactionTimeoutMs = 600_000): Promise<FencingChangelogWriter> {
    const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, transactionTimeout: transactionTimeoutMs });
    await producer.connect();
    try {
      return new FencingChangelogWriter(transactionalId, producer, await producer.transaction());
    } catch (e) {
      await producer.disconnect().catch(() => undefined);
      throw new FoldstreamError('TRANSACTION_FAILED', `InitProducerId for ${transactionalId} failed: ${(e as Error).message}`, {
        hint: 'the rebuild could not fence the task; nothing was written. Check that the brokers are up and the ACLs allow the transactional id, then run rebuild again',
        cause: e,
      });
    }
  }

  /** Sends the records and commits; on any failure the transaction is aborted and nothing of it is visible. */
  async write(records: OutgoingRecord[], onSent?: (sent: number) => void): Promise<void> {
    try {
      for (let i = 0; i < records.length; i += CHUNK) {
        const byTopic = new Map<string, OutgoingRecord[]>();
        for (const r of records.slice(i, i + CHUNK)) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
        await this.txn.sendBatch({
          acks: -1,
          topicMessages: [...byTopic].map(([topic, rs]) => ({
            topic,
            messages: rs.map((r) => ({ key: r.key, value: r.value, partition: r.partition, ...(r.headers ? { headers: r.headers } : {}) })),
          })),
        });
        onSent?.(Math.min(records.length, i + CHUNK));
      }
      this.ended = true;
      await this.txn.commit();
    } catch (e) {
      await this.txn.abort().catch(() => undefined);
      const fenced = /fenc|epoch/i.test((e as Error).message ?? '') || (e as { type?: string }).type === 'INVALID_PRODUCER_EPOCH';
      throw new FoldstreamError('TRANSACTION_FAILED', `the rebuild's transaction ${this.transactionalId} failed: ${(e as Error).message}`, {
        hint: fenced
          ? 'an instance of the app started the task meanwhile and fenced the rebuild: stop every instance and run rebuild again (nothing of this task was written)'
          : 'nothing of this task was written; run rebuild again',
        cause: e,
      });
    }
  }

  /** Ends an unused transaction (nothing was sent in it) and disconnects. */
  async close(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      await this.txn.abort().catch(() => undefined);
    }
    await this.producer.disconnect().catch(() => undefined);
  }
}
