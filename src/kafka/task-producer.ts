/**
 * One producer per task (DESIGN §4): transactionalId `<app>-<processor>-<partition>`, idempotent, one request in
 * flight. kafkajs runs InitProducerId on the first transaction(); init() forces it before restore, which fences a
 * zombie holding the same id and completes or aborts its open transaction. A producer whose commit or abort failed
 * cannot begin again in kafkajs: the task throws it away and creates a new one.
 */
import type { Kafka, Producer, RecordMetadata, Transaction } from 'kafkajs';
import type { OutgoingRecord, TaskProducer, TopicPartitionOffset } from './types.ts';

export interface TaskProducerOptions {
  /** set under exactly_once; absent under at_least_once */
  transactionalId?: string;
  transactionTimeoutMs: number;
}

/** Below the broker's default message.max.bytes (1 MiB), leaving room for batch and record overhead. */
const MAX_PARTITION_BATCH_BYTES = 768 * 1024;

function recordBytes(r: OutgoingRecord): number {
  let n = 64 + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const [k, v] of Object.entries(r.headers ?? {})) n += k.length + (typeof v === 'string' ? Buffer.byteLength(v) : v.length) + 8;
  return n;
}

/** Splits records, in order, into requests where no partition gets more than `limit` bytes (one record always fits). */
export function chunkByPartitionBytes(records: OutgoingRecord[], limit: number): OutgoingRecord[][] {
  const chunks: OutgoingRecord[][] = [];
  let current: OutgoingRecord[] = [];
  let bytes = new Map<string, number>();
  for (const r of records) {
    const key = `${r.topic}:${r.partition}`;
    const size = recordBytes(r);
    if (current.length && (bytes.get(key) ?? 0) + size > limit) {
      chunks.push(current);
      current = [];
      bytes = new Map();
    }
    current.push(r);
    bytes.set(key, (bytes.get(key) ?? 0) + size);
  }
  if (current.length) chunks.push(current);
  return chunks;
}

class KafkaJsTaskProducer implements TaskProducer {
  private readonly producer: Producer;
  private tx: Transaction | undefined;
  readonly transactional: boolean;

  constructor(kafka: Kafka, opts: TaskProducerOptions) {
    this.transactional = opts.transactionalId !== undefined;
    this.producer = kafka.producer({
      ...(opts.transactionalId === undefined ? {} : { transactionalId: opts.transactionalId }),
      transactionTimeout: opts.transactionTimeoutMs,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 3000 },
    });
  }

  get inTransaction(): boolean {
    return this.tx !== undefined;
  }

  async init(): Promise<void> {
    await this.producer.connect();
    if (this.transactional) {
      // InitProducerId happens here; a transaction with nothing in it ends without an EndTxn request.
      const t = await this.producer.transaction();
      await t.abort();
    }
  }

  async begin(): Promise<void> {
    if (this.transactional) this.tx = await this.producer.transaction();
  }

  /**
   * Sends records; kafkajs puts all records of a partition into one record batch, and the broker refuses a batch
   * above message.max.bytes (1 MiB by default), so records are sent in several requests when a partition's share
   * would exceed MAX_PARTITION_BATCH_BYTES.
   */
  async send(records: OutgoingRecord[]): Promise<Map<string, bigint>> {
    const ends = new Map<string, bigint>();
    for (const chunk of chunkByPartitionBytes(records, MAX_PARTITION_BATCH_BYTES)) {
      for (const [key, end] of await this.sendChunk(chunk)) if (end > (ends.get(key) ?? -1n)) ends.set(key, end);
    }
    return ends;
  }

  private async sendChunk(records: OutgoingRecord[]): Promise<Map<string, bigint>> {
    const ends = new Map<string, bigint>();
    if (records.length === 0) return ends;
    const byTopic = new Map<string, OutgoingRecord[]>();
    const counts = new Map<string, number>();
    for (const r of records) {
      const list = byTopic.get(r.topic);
      if (list) list.push(r);
      else byTopic.set(r.topic, [r]);
      const key = `${r.topic}:${r.partition}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const topicMessages = [...byTopic].map(([topic, rs]) => ({
      topic,
      messages: rs.map((r) => ({
        key: r.key,
        value: r.value,
        partition: r.partition,
        ...(r.headers ? { headers: r.headers } : {}),
        ...(r.timestamp !== undefined ? { timestamp: String(r.timestamp) } : {}),
      })),
    }));
    const target = this.tx ?? this.producer;
    const meta: RecordMetadata[] = await target.sendBatch({ topicMessages, acks: -1 });
    for (const m of meta) {
      const key = `${m.topicName}:${m.partition}`;
      const base = m.baseOffset ?? m.offset;
      if (base !== undefined) ends.set(key, BigInt(base) + BigInt(counts.get(key) ?? 0));
    }
    return ends;
  }

  async sendOffsets(groupId: string, offsets: TopicPartitionOffset[]): Promise<void> {
    if (!this.tx) throw new Error('sendOffsets outside a transaction');
    const byTopic = new Map<string, { partition: number; offset: string }[]>();
    for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), { partition: o.partition, offset: o.offset }]);
    await this.tx.sendOffsets({ consumerGroupId: groupId, topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) });
  }

  async commit(): Promise<void> {
    const tx = this.tx;
    if (!tx) return;
    await tx.commit();
    this.tx = undefined;
  }

  async abort(): Promise<void> {
    const tx = this.tx;
    if (!tx) return;
    this.tx = undefined;
    await tx.abort();
  }

  async close(): Promise<void> {
    this.tx = undefined;
    await this.producer.disconnect();
  }
}

export function createTaskProducer(kafka: Kafka, opts: TaskProducerOptions): TaskProducer {
  return new KafkaJsTaskProducer(kafka, opts);
}
