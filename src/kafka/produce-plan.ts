/**
 * How one send() of the transactional producer (txn-producer.ts) becomes Produce requests: one request per leader
 * broker carrying every partition that broker leads, each partition as one record batch with its own sequence
 * numbers. A partition whose records exceed the batch size limit is split into several batches, which go in several
 * requests to that broker, one after the other (a Produce request holds one batch per partition). Pure: the
 * producer applies the returned sequences only together with sending the plan, and never plans the same records
 * again (a failed send poisons the transaction: see txn-producer.ts).
 */
import type { OutgoingRecord } from './types.ts';

/** One record batch: records of one topic-partition, in order, starting at `firstSequence`. */
export interface PartitionBatch {
  topic: string;
  partition: number;
  firstSequence: number;
  records: OutgoingRecord[];
}

export interface ProducePlan {
  /** per leader broker (node id), its Produce requests in the order they must go: each holds one batch per partition */
  byBroker: Map<string, PartitionBatch[][]>;
  /** the next sequence number of every partition written, after this plan */
  nextSequences: Map<string, number>;
}

/** Sequence numbers are int32 and wrap to 0 after 2^31 - 1, as in the Java producer. */
const SEQUENCE_SPACE = 2 ** 31;

export function addSequence(sequence: number, n: number): number {
  return (sequence + n) % SEQUENCE_SPACE;
}

export const partitionKey = (topic: string, partition: number): string => `${topic}:${partition}`;

export function recordBytes(r: OutgoingRecord): number {
  let n = 64 + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const [k, v] of Object.entries(r.headers ?? {})) n += k.length + (typeof v === 'string' ? Buffer.byteLength(v) : v.length) + 8;
  return n;
}

/** Records grouped per topic-partition, in the order they came, each partition in chunks of at most `limit` bytes (a larger single record alone). */
export function chunksByPartition(records: readonly OutgoingRecord[], limit: number): Map<string, OutgoingRecord[][]> {
  const out = new Map<string, OutgoingRecord[][]>();
  const bytes = new Map<string, number>();
  for (const r of records) {
    const key = partitionKey(r.topic, r.partition);
    let chunks = out.get(key);
    if (!chunks) out.set(key, (chunks = [[]]));
    const size = recordBytes(r);
    let current = chunks[chunks.length - 1]!;
    if (current.length && (bytes.get(key) ?? 0) + size > limit) {
      chunks.push((current = []));
      bytes.set(key, 0);
    }
    current.push(r);
    bytes.set(key, (bytes.get(key) ?? 0) + size);
  }
  return out;
}

/**
 * Plans the Produce requests for `records`. `leaderOf` names the leader broker of a partition; `sequences` holds the
 * next sequence number per "topic:partition" (absent: 0) and is not changed.
 */
export function planProduce(
  records: readonly OutgoingRecord[],
  leaderOf: (topic: string, partition: number) => string,
  sequences: ReadonlyMap<string, number>,
  limit: number,
): ProducePlan {
  const byBroker = new Map<string, PartitionBatch[][]>();
  const nextSequences = new Map<string, number>();
  for (const [key, chunks] of chunksByPartition(records, limit)) {
    const { topic, partition } = chunks[0]![0]!;
    const nodeId = leaderOf(topic, partition);
    let requests = byBroker.get(nodeId);
    if (!requests) byBroker.set(nodeId, (requests = []));
    let sequence = sequences.get(key) ?? 0;
    chunks.forEach((chunk, i) => {
      (requests[i] ??= []).push({ topic, partition, firstSequence: sequence, records: chunk });
      sequence = addSequence(sequence, chunk.length);
    });
    nextSequences.set(key, sequence);
  }
  return { byBroker, nextSequences };
}
