/** Start, end and committed group offsets, through one shared kafkajs admin client. */
import type { Admin, Kafka } from 'kafkajs';
import type { OffsetsAdmin } from './types.ts';

class KafkaJsOffsetsAdmin implements OffsetsAdmin {
  private readonly admin: Admin;
  private connected: Promise<void> | undefined;
  private closed = false;

  constructor(kafka: Kafka) {
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
  }
}

export function createOffsetsAdmin(kafka: Kafka): OffsetsAdmin {
  return new KafkaJsOffsetsAdmin(kafka);
}
