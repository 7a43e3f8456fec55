/**
 * Test helpers for the real broker that `npm test` starts (or the one at KAFKA_BROKERS). Each takes an optional
 * `brokers` list for a test that runs a broker of its own (broker-restart.test.ts); the default is BROKERS.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Admin, type ITopicConfig, type KafkaConfig } from 'kafkajs';
import { createTopicsAndWait } from '../../src/kafka/admin.ts';
import { retry } from '../../src/kafka/retry.ts';
import { waitFor } from './processes.ts';

export const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((s) => s.trim());

/** Credentials of brokers that need them (a secured broker's admin listener, test/helpers/secured-broker.ts). */
const brokerAuth = new Map<string, Pick<KafkaConfig, 'ssl' | 'sasl'>>();

/** Every helper that gets `brokers` connects to them with these settings from now on. */
export function useBrokerAuth(brokers: string[], auth: Pick<KafkaConfig, 'ssl' | 'sasl'>): void {
  brokerAuth.set(brokers.join(','), auth);
}

export function kafka(clientId = 'foldstream-test', brokers: string[] = BROKERS): Kafka {
  return new Kafka({ brokers, clientId, logLevel: logLevel.NOTHING, retry: { retries: 10 }, ...brokerAuth.get(brokers.join(',')) });
}

/** A name no other test (or earlier run) uses. */
export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export async function withAdmin<T>(fn: (admin: Admin) => Promise<T>, brokers: string[] = BROKERS): Promise<T> {
  const admin = kafka('foldstream-test-admin', brokers).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopics(topics: ITopicConfig[], brokers: string[] = BROKERS): Promise<void> {
  await withAdmin((a) => createTopicsAndWait(a, topics), brokers);
}

export async function deleteTopics(names: string[], brokers: string[] = BROKERS): Promise<void> {
  await withAdmin(async (a) => {
    const existing = new Set(await a.listTopics());
    const mine = names.filter((n) => existing.has(n));
    if (mine.length) await a.deleteTopics({ topics: mine });
  }, brokers);
}

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  timestamp: number;
}

/**
 * Reads every record of the topics up to their current end (the last stable offset, or with read_uncommitted the
 * high watermark), with read_committed (default) or read_uncommitted.
 * Uses a fresh consumer group and stops when each partition reached the end offset seen at the start.
 */
export async function readAll(topics: string[], opts: { readUncommitted?: boolean; timeoutMs?: number; brokers?: string[] } = {}): Promise<ReadRecord[]> {
  const brokers = opts.brokers ?? BROKERS;
  const k = kafka('foldstream-test-reader', brokers);
  // A committed transaction's markers reach its partitions one by one after EndTxn returns: a partition whose marker
  // is not written yet still has its last stable offset below the commit. Wait for them, or a read_committed read
  // right after a commit sees the outputs of a transaction on one topic and not yet its changelog on another.
  if (!opts.readUncommitted) await settleTransactions(topics, undefined, brokers);
  // kafkajs's admin.fetchTopicOffsets gives the last stable offset: a read_uncommitted read goes to the high watermark
  const ends = new Map<string, bigint>();
  const isolation = opts.readUncommitted ? 'read_uncommitted' : 'read_committed';
  for (const t of topics) {
    for (const [partition, end] of await endOffsets(t, isolation, brokers)) ends.set(`${t}:${partition}`, end);
  }
  const pending = new Set([...ends].filter(([, end]) => end > 0n).map(([k]) => k));
  const out: ReadRecord[] = [];
  if (pending.size === 0) return out;
  const consumer = k.consumer({ groupId: unique('reader'), readUncommitted: opts.readUncommitted ?? false, maxWaitTimeInMs: 200 });
  await consumer.connect();
  for (const t of topics) await consumer.subscribe({ topic: t, fromBeginning: true });
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const check = (topic: string, partition: number, lastOffset: string) => {
    const key = `${topic}:${partition}`;
    if (pending.has(key) && BigInt(lastOffset) + 1n >= ends.get(key)!) {
      pending.delete(key);
      if (pending.size === 0) finish();
    }
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => check(e.payload.topic, e.payload.partition, e.payload.lastOffset));
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        if (BigInt(m.offset) >= ends.get(`${batch.topic}:${batch.partition}`)!) continue;
        const headers: Record<string, string> = {};
        for (const [hk, hv] of Object.entries(m.headers ?? {})) if (hv !== undefined) headers[hk] = String(hv);
        out.push({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key ? m.key.toString() : null,
          value: m.value,
          headers,
          timestamp: Number(m.timestamp),
        });
      }
    },
  });
  const timeout = new Promise<void>((_, reject) =>
    setTimeout(() => reject(new Error(`readAll timed out; still waiting for ${[...pending].join(', ')}`)), opts.timeoutMs ?? 60_000).unref(),
  );
  try {
    await Promise.race([done, timeout]);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/**
 * End offsets per partition as ListOffsets reports them for an isolation level: read_uncommitted gives the high
 * watermark, read_committed the last stable offset. (kafkajs's admin.fetchTopicOffsets always asks read_committed,
 * so its `high` is the last stable offset.) A partition whose two differ has an open transaction.
 */
export async function endOffsets(topic: string, isolation: 'read_committed' | 'read_uncommitted', brokers: string[] = BROKERS): Promise<Map<number, bigint>> {
  const k = kafka('end-offsets', brokers);
  const symbol = Object.getOwnPropertySymbols(k).find((s) => s.description === 'private:Kafka:createCluster')!;
  type Cluster = {
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    addTargetTopic(t: string): Promise<void>;
    findTopicPartitionMetadata(t: string): { partitionId: number }[];
    fetchTopicsOffset(q: unknown[]): Promise<{ partitions: { partition: number; offset: string }[] }[]>;
  };
  // A topic created moments ago may still be moving its leaders (NOT_LEADER_FOR_PARTITION on a fresh broker, seen in
  // CI): ask again with fresh metadata while kafkajs calls the error retriable.
  return retry(
    async () => {
      const cluster = (k as unknown as Record<symbol, (o: object) => Cluster>)[symbol]!({ isolationLevel: isolation === 'read_committed' ? 1 : 0 });
      await cluster.connect();
      try {
        await cluster.addTargetTopic(topic);
        const partitions = cluster.findTopicPartitionMetadata(topic).map((p) => ({ partition: p.partitionId }));
        const [res] = await cluster.fetchTopicsOffset([{ topic, partitions, fromBeginning: false }]);
        return new Map((res?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      } finally {
        await cluster.disconnect();
      }
    },
    { retriable: (e) => (e as { retriable?: boolean }).retriable === true, timeoutMs: 30_000, maxPauseMs: 1000 },
  );
}

/**
 * Waits (up to `timeoutMs`) until no partition of the topics has a transaction open: every commit or abort marker
 * written. A transaction that stays open (a producer that was killed) is left for the caller to see.
 */
export async function settleTransactions(topics: string[], timeoutMs = 15_000, brokers: string[] = BROKERS): Promise<void> {
  const settled = async () => (await Promise.all(topics.map((t) => openTransactions(t, brokers)))).every((open) => open.length === 0);
  await waitFor(settled, timeoutMs, 'transactions to settle', 100).catch(() => undefined);
}

/** Partitions of a topic with a transaction still open (high watermark above the last stable offset). */
export async function openTransactions(topic: string, brokers: string[] = BROKERS): Promise<number[]> {
  const [hw, lso] = await Promise.all([endOffsets(topic, 'read_uncommitted', brokers), endOffsets(topic, 'read_committed', brokers)]);
  return [...hw].filter(([p, h]) => h !== lso.get(p)).map(([p]) => p);
}

/** A record as tests compare it: the value decoded (JSON, msgpack…) or, for raw bytes such as dead letters, base64. */
export interface Seen {
  partition: number;
  key: string | null;
  value: unknown;
  headers: Record<string, string>;
  timestamp: number;
}

/** Records grouped per partition and key (`<partition>/<key>`), each group in the given order, groups sorted. */
export function byKey<R extends { partition: number; key: string | null }>(records: R[]): Record<string, R[]> {
  const out: Record<string, R[]> = {};
  for (const r of records) (out[`${r.partition}/${r.key}`] ??= []).push(r);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}
