/**
 * Reads changelog partitions for restores, read_committed, from a checkpoint to the end.
 *
 * kafkajs has no assign(): its consumers always join a group, and a group member cannot tell when it has reached
 * the end of a partition whose tail is control records or aborted writes (kafkajs skips those batches without
 * calling eachBatch). So restores fetch directly: kafkajs's own cluster and broker fetch (the same code its
 * consumer uses, including its decoding and aborted-transaction filtering), one partition at a time, until the
 * offset reaches the partition's last stable offset as the first fetch reported it. This uses kafkajs internals;
 * kafkajs is pinned (2.2.4, its final release) and test/integration/state-restore tests cover it.
 *
 * Restores run after the task's InitProducerId, when no transaction of the task can still be pending, so the last
 * stable offset is the end of everything the task ever committed — unless a broker lost a transaction's markers
 * (docs/exactly-once.md): then the task keeps a store that is ahead of it (Task.restore).
 */
import { createRequire } from 'node:module';
import { retry } from './retry.ts';
import type { Kafka } from 'kafkajs';
import type { Logger } from '../processors/types.ts';
import type { FetchedRecord, PartitionReader } from './types.ts';
import { createCluster, READ_COMMITTED, type KafkaJsCluster } from './kafkajs-cluster.ts';
import { LazyConnection } from './lazy-connection.ts';

const require = createRequire(import.meta.url);

interface RawMessage {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | undefined>;
}

interface KafkaJsBatch {
  messages: RawMessage[];
  rawMessages: RawMessage[];
  highWatermark: string;
  isEmptyIncludingFiltered(): boolean;
  lastOffset(): string;
}

type BatchCtor = new (topic: string, fetchedOffset: string, partitionData: unknown) => KafkaJsBatch;

const Batch = require('kafkajs/src/consumer/batch') as BatchCtor;
const RETRIABLE = new Set([
  'NOT_LEADER_FOR_PARTITION',
  'NOT_LEADER_OR_FOLLOWER',
  'LEADER_NOT_AVAILABLE',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'REPLICA_NOT_AVAILABLE',
  'KAFKA_STORAGE_ERROR',
  'OFFSET_NOT_AVAILABLE',
]);

export class ChangelogReader implements PartitionReader {
  private readonly cluster: KafkaJsCluster;
  private readonly connection: LazyConnection;
  private closed = false;
  private fetchChain: Promise<unknown> = Promise.resolve();

  constructor(
    kafka: Kafka,
    private readonly log: Logger,
    private readonly maxBytes = 4 << 20,
  ) {
    this.cluster = createCluster(kafka, READ_COMMITTED);
    this.connection = new LazyConnection('changelog reader', () => this.cluster.connect(), () => this.cluster.disconnect());
  }

  private connect(): Promise<void> {
    return this.connection.ensure();
  }

  /**
   * One fetch of one partition; retries leadership changes and broker restarts. Fetches are serialised: kafkajs
   * connects a broker's fetch connection lazily, and concurrent first fetches each open a socket on the same
   * connection object, orphaning all but one (found as leaked sockets after close).
   */
  private fetchOnce(topic: string, partition: number, offset: bigint): Promise<{ batch: KafkaJsBatch; lastStable: bigint }> {
    const result = this.fetchChain.then(() => this.fetchUnlocked(topic, partition, offset));
    this.fetchChain = result.catch(() => undefined);
    return result;
  }

  private fetchUnlocked(topic: string, partition: number, offset: bigint): Promise<{ batch: KafkaJsBatch; lastStable: bigint }> {
    return retry(
      async () => {
        if (this.closed) throw new Error('changelog reader closed');
        await this.connect();
        await this.cluster.addTargetTopic(topic);
        const leaders = this.cluster.findLeaderForPartitions(topic, [partition]);
        const nodeId = Object.keys(leaders)[0];
        if (nodeId === undefined) throw Object.assign(new Error(`no leader for ${topic}-${partition}`), { type: 'LEADER_NOT_AVAILABLE' });
        const broker = await this.cluster.findBroker({ nodeId });
        const { responses } = await broker.fetch({
          replicaId: -1,
          isolationLevel: READ_COMMITTED,
          maxWaitTime: 100,
          minBytes: 1,
          maxBytes: this.maxBytes,
          topics: [{ topic, partitions: [{ partition, fetchOffset: offset.toString(), maxBytes: this.maxBytes }] }],
        });
        const data = responses.find((r) => r.topicName === topic)?.partitions.find((p) => p.partition === partition);
        if (!data) throw Object.assign(new Error(`no fetch response for ${topic}-${partition}`), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
        return { batch: new Batch(topic, offset.toString(), data), lastStable: BigInt(data.lastStableOffset) };
      },
      {
        retriable: (e) =>
          !this.closed &&
          (RETRIABLE.has((e as { type?: string }).type ?? '') || (e as { name?: string }).name?.startsWith('KafkaJSConnection') === true || (e as { retriable?: boolean }).retriable === true),
        attempts: 20,
        maxPauseMs: 2_000,
        onRetry: async (e, attempt) => {
          this.log.debug({ event: 'restore.fetch_retry', topic, partition, error: (e as Error).message, attempt });
          await this.cluster.refreshMetadata().catch(() => undefined);
        },
      },
    );
  }

  /**
   * Reads [fromOffset, end) where end is the last stable offset seen by the first fetch, calling onRecords for each
   * fetched chunk in order. Returns the end offset (the store's new checkpoint).
   */
  async read(topic: string, partition: number, fromOffset: bigint, onRecords: (records: FetchedRecord[]) => Promise<void>): Promise<bigint> {
    let next = fromOffset;
    let end: bigint | undefined;
    let idle = 0;
    while (end === undefined || next < end) {
      const { batch, lastStable } = await this.fetchOnce(topic, partition, next);
      end ??= lastStable;
      if (next >= end) break;
      const records: FetchedRecord[] = [];
      for (const m of batch.messages) {
        const o = BigInt(m.offset);
        if (o < next || o >= end) continue;
        records.push({
          topic,
          partition,
          offset: m.offset,
          timestamp: Number(m.timestamp),
          key: m.key ?? null,
          value: m.value ?? null,
          headers: m.headers ?? {},
        });
      }
      if (records.length) await onRecords(records);
      // Progress past everything fetched, including control records and aborted writes.
      const raw = batch.rawMessages;
      const lastRaw = raw.length ? raw.reduce((max, m) => (BigInt(m.offset) > max ? BigInt(m.offset) : max), -1n) : -1n;
      if (lastRaw + 1n > next) {
        next = lastRaw + 1n;
        idle = 0;
      } else if (++idle > 200) {
        throw new Error(`restore of ${topic}-${partition} made no progress at offset ${next} (end ${end})`);
      }
    }
    return end > fromOffset ? end : fromOffset;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connection.close();
  }
}
