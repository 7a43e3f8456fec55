/**
 * Reads whole topics up to given end offsets, at either isolation level, and hands each record to a callback in
 * partition order (records are not kept, so a million-record run fits in memory).
 *
 * Part of the chaos verifier: imports only Node and kafkajs, nothing from src/.
 */
import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { PartitionEnds } from './offsets-probe.ts';

export interface VRecord {
  topic: string;
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  timestamp: number;
}

export interface ReadOptions {
  isolation: 'read_committed' | 'read_uncommitted';
  /** give up when no partition made progress for this long */
  stallMs?: number;
}

/**
 * Reads each partition from its log start to `end` (the last stable offset for read_committed, the high watermark
 * for read_uncommitted). Resolves when every partition reached its end.
 */
export async function readTopics(kafka: Kafka, ends: PartitionEnds[], opts: ReadOptions, onRecord: (r: VRecord) => void): Promise<void> {
  const target = new Map<string, bigint>();
  for (const e of ends) {
    const end = opts.isolation === 'read_committed' ? e.lastStable : e.highWatermark;
    if (end > e.logStart) target.set(`${e.topic}:${e.partition}`, end);
  }
  if (target.size === 0) return;
  const topics = [...new Set([...target.keys()].map((k) => k.slice(0, k.lastIndexOf(':'))))];
  const groupId = `chaos-verifier-${randomBytes(6).toString('hex')}`;
  const consumer = kafka.consumer({
    groupId,
    readUncommitted: opts.isolation === 'read_uncommitted',
    maxWaitTimeInMs: 100,
    maxBytesPerPartition: 4 * 1024 * 1024,
    maxBytes: 32 * 1024 * 1024,
    sessionTimeout: 30_000,
    allowAutoTopicCreation: false,
  });
  const pending = new Set(target.keys());
  let finish!: () => void;
  let fail!: (e: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  let progressAt = Date.now();
  const reached = (topic: string, partition: number, lastOffset: bigint) => {
    const k = `${topic}:${partition}`;
    progressAt = Date.now();
    if (pending.has(k) && lastOffset + 1n >= target.get(k)!) {
      pending.delete(k);
      if (pending.size === 0) finish();
    }
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => reached(e.payload.topic, e.payload.partition, BigInt(e.payload.lastOffset)));
  consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));
  await consumer.connect();
  try {
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = target.get(`${batch.topic}:${batch.partition}`);
        if (end === undefined) return;
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset >= end) break;
          const headers: Record<string, string> = {};
          for (const [hk, hv] of Object.entries(m.headers ?? {})) {
            if (hv !== undefined) headers[hk] = Buffer.isBuffer(hv) ? hv.toString('utf8') : String(hv);
          }
          onRecord({ topic: batch.topic, partition: batch.partition, offset, key: m.key ?? null, value: m.value ?? null, headers, timestamp: Number(m.timestamp) });
        }
      },
    });
    const stallMs = opts.stallMs ?? 60_000;
    const watchdog = setInterval(() => {
      if (Date.now() - progressAt > stallMs) fail(new Error(`reading ${opts.isolation} stalled; still waiting for ${[...pending].slice(0, 10).join(', ')}`));
    }, 1000);
    try {
      await done;
    } finally {
      clearInterval(watchdog);
    }
  } finally {
    await consumer.disconnect();
  }
}
