/** Start, end and committed group offsets, through one shared kafkajs admin client. */
import type { Admin, Kafka } from 'kafkajs';
import { createCluster, explainNoCoordinator, GROUP_COORDINATOR, READ_UNCOMMITTED, type KafkaJsCluster } from './kafkajs-cluster.ts';
import { LazyConnection } from './lazy-connection.ts';
import { retry } from './retry.ts';
import type { OffsetsAdmin } from './types.ts';

class KafkaJsOffsetsAdmin implements OffsetsAdmin {
  private readonly admin: Admin;
  private readonly adminConnection: LazyConnection;
  /** a read_uncommitted cluster for the high watermark (kafkajs's admin asks read_committed) */
  private readonly uncommitted: KafkaJsCluster;
  private readonly uncommittedConnection: LazyConnection;

  constructor(private readonly kafka: Kafka) {
    this.admin = kafka.admin({ retry: { retries: 8 } });
    this.adminConnection = new LazyConnection('offsets admin', () => this.admin.connect(), () => this.admin.disconnect());
    this.uncommitted = createCluster(kafka, READ_UNCOMMITTED);
    this.uncommittedConnection = new LazyConnection('offsets admin', () => this.uncommitted.connect(), () => this.uncommitted.disconnect());
  }

  private connect(): Promise<void> {
    return this.adminConnection.ensure();
  }

  async endOffsets(topic: string): Promise<Map<number, bigint>> {
    await this.connect();
    const res = await this.admin.fetchTopicOffsets(topic);
    return new Map(res.map((p) => [p.partition, BigInt(p.high)]));
  }

  async highWatermarks(topic: string): Promise<Map<number, bigint>> {
    await this.uncommittedConnection.ensure();
    const cluster = this.uncommitted;
    return retry(
      async () => {
        await cluster.addTargetTopic(topic);
        const partitions = cluster.findTopicPartitionMetadata(topic).map((p) => ({ partition: p.partitionId }));
        const [res] = await cluster.fetchTopicsOffset([{ topic, partitions, fromBeginning: false }]);
        return new Map((res?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      },
      {
        retriable: (e) => !this.uncommittedConnection.isClosed && (e as { retriable?: boolean }).retriable === true,
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
    const res = await this.admin.fetchOffsets({ groupId, topics: [topic] }).catch(async (e: unknown) => {
      // a missing ACL on the group reaches kafkajs as "no coordinator": name it
      throw await explainNoCoordinator(this.kafka, e, groupId, GROUP_COORDINATOR);
    });
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
    await Promise.all([this.adminConnection.close(), this.uncommittedConnection.close()]);
  }
}

export function createOffsetsAdmin(kafka: Kafka): OffsetsAdmin {
  return new KafkaJsOffsetsAdmin(kafka);
}
