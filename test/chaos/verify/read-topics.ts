/**
 * Reads whole topics up to given end offsets, at either isolation level, and hands each record to a callback in
 * partition order (records are not kept, so a million-record run fits in memory).
 *
 * The log is read with Fetch requests of the verifier's own and read_committed is decided from the transaction
 * markers in it (fetch-log.ts), not by kafkajs's consumer: its filter of aborted records delivers some of them when
 * transactions of several producers overlap in a partition (a groupBy projection's repartition topic), and the
 * verifier must see what the broker committed, not what foldstream's client saw.
 *
 * Part of the chaos verifier: imports only Node and kafkajs, nothing from src/.
 */
import type { Kafka } from 'kafkajs';
import { readPartition } from './fetch-log.ts';
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
  /** give up when a partition made no progress for this long */
  stallMs?: number;
}

/** partitions read at the same time */
const PARALLEL = 8;

/**
 * Reads each partition from its log start: read_committed hands on the committed records below the last stable
 * offset (reading on to the high watermark, where the markers of some of them may lie), read_uncommitted every record
 * below the high watermark. Resolves when every partition was read.
 */
export async function readTopics(kafka: Kafka, ends: PartitionEnds[], opts: ReadOptions, onRecord: (r: VRecord) => void): Promise<void> {
  const todo = ends.filter((e) => (opts.isolation === 'read_committed' ? e.lastStable : e.highWatermark) > e.logStart);
  if (todo.length === 0) return;
  const admin = kafka.admin();
  await admin.connect();
  try {
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const e = todo[next++]!;
        const end = opts.isolation === 'read_committed' ? e.lastStable : e.highWatermark;
        await readPartition(admin, e.topic, e.partition, { isolation: opts.isolation, from: e.logStart, end, readTo: e.highWatermark, ...(opts.stallMs ? { stallMs: opts.stallMs } : {}) }, onRecord);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, todo.length) }, worker));
  } finally {
    await admin.disconnect();
  }
}
