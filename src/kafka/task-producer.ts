/**
 * One producer per task (DESIGN §4): transactionalId `<app>-<processor>-<partition>`, idempotent, one request in
 * flight. kafkajs runs InitProducerId on the first transaction(); init() forces it before restore, which fences a
 * zombie holding the same id and completes or aborts its open transaction. A producer whose commit or abort failed
 * cannot begin again in kafkajs: the task throws it away and creates a new one.
 */
import type { Kafka, Producer, RecordMetadata, Transaction } from 'kafkajs';
import type { OutgoingRecord, TaskProducer, TopicPartitionOffset } from './types.ts';
import { retryOnCoordinatorError } from './errors.ts';
import { explainNoCoordinator, TRANSACTION_COORDINATOR } from './kafkajs-cluster.ts';

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

/**
 * Splits records into produce requests of ONE topic-partition each, in order within each partition, none above
 * `limit` bytes (a single larger record still goes alone).
 *
 * One partition per request because of kafkajs (2.2.4): when a request to several brokers partly fails, its retry
 * re-maps partitions to their current leaders but skips every broker that answered the first time. A partition
 * whose leader moved to a broker that had answered is then never sent (a silent loss), and one that moved to a
 * broker that had failed is sent again with a new sequence number (a duplicate the broker cannot detect). Found by
 * the chaos test that kills brokers: 411 events written twice inside committed transactions.
 */
export function partitionRequests(records: OutgoingRecord[], limit: number): OutgoingRecord[][] {
  const byPartition = new Map<string, OutgoingRecord[]>();
  for (const r of records) {
    const key = `${r.topic}:${r.partition}`;
    const list = byPartition.get(key);
    if (list) list.push(r);
    else byPartition.set(key, [r]);
  }
  const requests: OutgoingRecord[][] = [];
  for (const list of byPartition.values()) {
    let current: OutgoingRecord[] = [];
    let bytes = 0;
    for (const r of list) {
      const size = recordBytes(r);
      if (current.length && bytes + size > limit) {
        requests.push(current);
        current = [];
        bytes = 0;
      }
      current.push(r);
      bytes += size;
    }
    if (current.length) requests.push(current);
  }
  return requests;
}

class KafkaJsTaskProducer implements TaskProducer {
  private readonly producer: Producer;
  private tx: Transaction | undefined;
  readonly transactional: boolean;

  private readonly transactionalId: string | undefined;

  constructor(
    private readonly kafka: Kafka,
    opts: TaskProducerOptions,
  ) {
    this.transactional = opts.transactionalId !== undefined;
    this.transactionalId = opts.transactionalId;
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
      try {
        const t = await this.producer.transaction();
        await t.abort();
      } catch (e) {
        // a missing ACL on the transactional id reaches kafkajs as "no coordinator": name it
        throw await explainNoCoordinator(this.kafka, e, this.transactionalId!, TRANSACTION_COORDINATOR);
      }
    }
  }

  async begin(): Promise<void> {
    if (this.transactional) this.tx = await this.producer.transaction();
  }

  /** Sends records, one partition per request (see partitionRequests); returns the end offset per partition. */
  async send(records: OutgoingRecord[]): Promise<Map<string, bigint>> {
    const ends = new Map<string, bigint>();
    for (const request of partitionRequests(records, MAX_PARTITION_BATCH_BYTES)) {
      const { topic, partition } = request[0]!;
      ends.set(`${topic}:${partition}`, await this.sendPartition(topic, partition, request));
    }
    return ends;
  }

  private async sendPartition(topic: string, partition: number, records: OutgoingRecord[]): Promise<bigint> {
    const messages = records.map((r) => ({
      key: r.key,
      value: r.value,
      partition,
      ...(r.headers ? { headers: r.headers } : {}),
      ...(r.timestamp !== undefined ? { timestamp: String(r.timestamp) } : {}),
    }));
    const target = this.tx ?? this.producer;
    const meta: RecordMetadata[] = await target.sendBatch({ topicMessages: [{ topic, messages }], acks: -1 });
    const mine = meta.find((m) => m.topicName === topic && m.partition === partition);
    const base = mine?.baseOffset ?? mine?.offset;
    // Never assume a write happened: without its acknowledgement the transaction must not commit.
    if (base === undefined || BigInt(base) < 0n) throw new Error(`no acknowledgement for ${records.length} records to ${topic}-${partition}`);
    return BigInt(base) + BigInt(records.length);
  }

  async sendOffsets(groupId: string, offsets: TopicPartitionOffset[]): Promise<void> {
    if (!this.tx) throw new Error('sendOffsets outside a transaction');
    const byTopic = new Map<string, { partition: number; offset: string }[]>();
    for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), { partition: o.partition, offset: o.offset }]);
    const tx = this.tx;
    // AddOffsetsToTxn and TxnOffsetCommit may both be repeated within a transaction
    await retryOnCoordinatorError(() => tx.sendOffsets({ consumerGroupId: groupId, topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) }));
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
