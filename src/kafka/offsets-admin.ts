/** Start, end and committed group offsets, through one shared kafkajs admin client. */
import type { Admin, Kafka } from 'kafkajs';
import { createCluster, READ_UNCOMMITTED, type KafkaJsCluster } from './kafkajs-cluster.ts';
import { retry } from './retry.ts';
import type { OffsetsAdmin } from './types.ts';

class KafkaJsOffsetsAdmin implements OffsetsAdmin {
  private readonly admin: Admin;
  private connected: Promise<void> | undefined;
  private closed = false;
  /** a read_uncommitted cluster for the high watermark (kafkajs's admin asks read_committed); created when needed */
  private uncommitted: { cluster: KafkaJsCluster; connected: Promise<void> } | undefined;

  constructor(private readonly kafka: Kafka) {
    this.admin = kafka.admin({ retry: { retries: 8 } });
  }

  private connect(): Promise<void> {
    // After close a call must fail, not reconnect: a socket opened then would keep the process alive.
    if (this.closed) return Promise.reject(new Error('offsets admin is closed'));
    this.connected ??= this.admin.connect();
    return this.connected;
  }

  async endOffsets(topic: string): Promise<Map<number, bigint>> {
    await this.connect();
    const res = await this.admin.fetchTopicOffsets(topic);
    return new Map(res.map((p) => [p.partition, BigInt(p.high)]));
  }

  async highWatermarks(topic: string): Promise<Map<number, bigint>> {
    if (this.closed) throw new Error('offsets admin is closed');
    if (!this.uncommitted) {
      const cluster = createCluster(this.kafka, READ_UNCOMMITTED);
      this.uncommitted = { cluster, connected: cluster.connect() };
    }
    const { cluster, connected } = this.uncommitted;
    await connected;
    return retry(
      async () => {
        await cluster.addTargetTopic(topic);
        const partitions = cluster.findTopicPartitionMetadata(topic).map((p) => ({ partition: p.partitionId }));
        const [res] = await cluster.fetchTopicsOffset([{ topic, partitions, fromBeginning: false }]);
        return new Map((res?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      },
      {
        retriable: (e) => !this.closed && (e as { retriable?: boolean }).retriable === true,
        attempts: 10,
        maxPauseMs: 1_000,
        onRetry: async () => void (await cluster.refreshMetadata().catch(() => undefined)),
      },
    );
  }

  async startOffsets(topic: string): Promise<Map<number, bigint>> {
    await this.connect();
    const res = await this.admin.fetchTopicOffsets(topic);
    return new Map(res.map((p) => [p.partition, BigInt(p.low)]));
  }

  async committedOffsets(groupId: string, topic: string): Promise<Map<number, bigint>> {
    await this.connect();
    const res = await this.admin.fetchOffsets({ groupId, topics: [topic] });
    const out = new Map<number, bigint>();
    for (const p of res[0]?.partitions ?? []) if (BigInt(p.offset) >= 0n) out.set(p.partition, BigInt(p.offset));
    return out;
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    await this.connect();
    try {
      const md = await this.admin.fetchTopicMetadata({ topics: [topic] });
      return md.topics[0]?.partitions.length;
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.connected) await this.admin.disconnect();
    if (this.uncommitted) await this.uncommitted.cluster.disconnect().catch(() => undefined);
  }
}

export function createOffsetsAdmin(kafka: Kafka): OffsetsAdmin {
  return new KafkaJsOffsetsAdmin(kafka);
}
