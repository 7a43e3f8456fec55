/** The benchmark's own Kafka calls (kafkajs): topics, offsets, filling a topic, producing at a fixed rate. */
import kafkajs, { type Admin, type Kafka, type Producer } from 'kafkajs';
import { createTopicsAndWait } from '../../src/kafka/admin.ts';
import type { Generator, InputRecord } from './workload.ts';

const { Kafka: KafkaClient, logLevel } = kafkajs;

export class Broker {
  readonly kafka: Kafka;
  private admin: Admin | undefined;

  constructor(readonly brokers: string[]) {
    this.kafka = new KafkaClient({ brokers, clientId: 'foldstream-bench', logLevel: logLevel.NOTHING, retry: { retries: 10 } });
  }

  async connect(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    return this.admin;
  }

  async createTopics(topics: { name: string; partitions: number; compact?: boolean; retainForever?: boolean }[]): Promise<void> {
    const admin = await this.connect();
    // a just-created topic can be unknown to metadata for a moment: this waits it out (kafkajs's waitForLeaders bails)
    await createTopicsAndWait(
      admin,
      topics.map((t) => ({
        topic: t.name,
        numPartitions: t.partitions,
        replicationFactor: 1,
        configEntries: [
          ...(t.compact ? [{ name: 'cleanup.policy', value: 'compact' }] : []),
          ...(t.retainForever ? [{ name: 'retention.ms', value: '-1' }] : []),
        ],
      })),
    );
  }

  /** The topics and consumer groups whose names start with the prefix (a run's, or a phase's). */
  async listByPrefix(prefix: string): Promise<{ topics: string[]; groups: string[] }> {
    const admin = await this.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix)).sort();
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix)).sort();
    return { topics, groups };
  }

  /** Deletes every topic and consumer group whose name starts with the prefix (the run's own). */
  async deleteByPrefix(prefix: string): Promise<{ topics: number; groups: number }> {
    const { topics, groups } = await this.listByPrefix(prefix);
    const admin = await this.connect();
    for (let i = 0; i < topics.length; i += 50) await admin.deleteTopics({ topics: topics.slice(i, i + 50) }).catch(() => undefined);
    if (groups.length) await admin.deleteGroups(groups).catch(() => undefined);
    // kafkajs keeps asking for the metadata of every topic it was once asked about, and fails once one is gone:
    // the next call gets a fresh admin client
    await admin.disconnect();
    this.admin = undefined;
    return { topics: topics.length, groups: groups.length };
  }

  /** Sum over partitions of the group's committed offsets on a topic (0 when none). */
  async committed(groupId: string, topic: string): Promise<number> {
    const admin = await this.connect();
    const res = await admin.fetchOffsets({ groupId, topics: [topic] });
    let sum = 0;
    for (const p of res[0]?.partitions ?? []) if (Number(p.offset) > 0) sum += Number(p.offset);
    return sum;
  }

  /** Per partition: the last stable offset (kafkajs asks read_committed). */
  async endOffsets(topic: string): Promise<Map<number, number>> {
    const admin = await this.connect();
    const res = await admin.fetchTopicOffsets(topic);
    return new Map(res.map((p) => [p.partition, Number(p.high)]));
  }

  async sum(topic: string): Promise<number> {
    let n = 0;
    for (const v of (await this.endOffsets(topic)).values()) n += v;
    return n;
  }

  async producer(): Promise<Producer> {
    const p = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await p.connect();
    return p;
  }

  async close(): Promise<void> {
    await this.admin?.disconnect();
    this.admin = undefined;
  }
}

function message(r: InputRecord, timestamp: number) {
  return { key: r.key, value: r.value, partition: r.partition, timestamp: String(timestamp) };
}

/** Writes `count` inputs as fast as the broker takes them (the backlog of a throughput run). */
export async function fill(broker: Broker, topic: string, gen: Generator, count: number): Promise<{ bytes: number; ms: number }> {
  const producer = await broker.producer();
  const t0 = Date.now();
  let bytes = 0;
  try {
    const batch = 4000;
    for (let sent = 0; sent < count; sent += batch) {
      const now = Date.now();
      const records = Array.from({ length: Math.min(batch, count - sent) }, () => gen.next(now));
      for (const r of records) bytes += r.value.length + r.key.length;
      await producer.send({ topic, acks: -1, messages: records.map((r) => message(r, now)) });
    }
  } finally {
    await producer.disconnect();
  }
  return { bytes, ms: Date.now() - t0 };
}

/**
 * Offers inputs at a fixed rate until stop(): every tick it sends what is due since the start, so a slow send is
 * made up at the next tick. Each record's timestamp (and its envelope's) is the moment it is handed to the client;
 * onSent gets it, for latency.
 */
export class RateLoad {
  private stopped = false;
  private done: Promise<void> | undefined;
  sent = 0;

  constructor(
    private readonly broker: Broker,
    private readonly topic: string,
    private readonly gen: Generator,
    private readonly ratePerSec: number,
    private readonly onSent: (r: InputRecord, at: number) => void,
  ) {}

  start(): void {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    const producer = await this.broker.producer();
    const t0 = Date.now();
    try {
      while (!this.stopped) {
        const due = Math.floor(((Date.now() - t0) / 1000) * this.ratePerSec) - this.sent;
        if (due > 0) {
          const now = Date.now();
          const records = Array.from({ length: due }, () => this.gen.next(now));
          for (const r of records) this.onSent(r, now);
          this.sent += records.length;
          await producer.send({ topic: this.topic, acks: -1, messages: records.map((r) => message(r, now)) });
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      await producer.disconnect();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}
