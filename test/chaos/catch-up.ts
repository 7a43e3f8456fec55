/**
 * Waits until every processor consumed its input to the end: each group's committed offset reaches the offset after
 * the last record that a read_committed reader can see in each input partition. For inputs written without
 * transactions that is the high watermark; for inputs written by transactions (a projection over an aggregate's
 * events) the log may end in commit/abort markers or aborted records, so the tail is read to find the last data record.
 */
import { Kafka, logLevel } from 'kafkajs';
import { probeEnds, type PartitionEnds } from './verify/offsets-probe.ts';
import { readTopics } from './verify/read-topics.ts';

export interface GroupInput {
  group: string;
  topics: string[];
}

export interface Lag {
  group: string;
  topic: string;
  partition: number;
  committed: string;
  end: string;
}

/**
 * Offset after the last record visible to read_committed, per partition; reads only each partition's tail, with the
 * verifier's reader (Fetch requests of its own, read_committed decided from the markers): a kafkajs consumer in a
 * fresh group took about 25 s per call for the saga workload's five transactional inputs (a group join, then
 * batches of up to 20,000 records per partition), which made each pass of the lag check that long.
 */
async function lastDataEnds(kafka: Kafka, ends: PartitionEnds[]): Promise<Map<string, bigint>> {
  const TAIL = 20_000n;
  const out = new Map<string, bigint>();
  const tails = ends.map((e) => {
    const start = e.lastStable - TAIL > e.logStart ? e.lastStable - TAIL : e.logStart;
    // when the tail holds no committed record, its start is the bound (as far as the tail tells)
    out.set(`${e.topic}:${e.partition}`, start);
    return { ...e, logStart: start };
  });
  await readTopics(kafka, tails, { isolation: 'read_committed' }, (r) => {
    const k = `${r.topic}:${r.partition}`;
    if (r.offset + 1n > out.get(k)!) out.set(k, r.offset + 1n);
  });
  return out;
}

/** Partitions whose group offset is still short of the input's end; empty when everything was consumed. */
export async function lags(brokers: string[], inputs: GroupInput[], transactionalInputs: Set<string>): Promise<Lag[]> {
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING, retry: { retries: 5 } });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const out: Lag[] = [];
    // Every group's committed offsets first, then the ends: a group that had committed, when asked, up to an end read
    // later had nothing left to do when asked, so when no group lags, all were idle together at one moment (which
    // holds even when processors form a cycle, as a saga's commands back to the aggregates it listens to do).
    const committedOf = new Map<string, Awaited<ReturnType<typeof admin.fetchOffsets>>>();
    for (const gi of inputs) committedOf.set(gi.group, await admin.fetchOffsets({ groupId: gi.group, topics: gi.topics }));
    // the ends of every input once (several groups may read one topic; each tail read joins a consumer group, which
    // takes seconds)
    const ends = await probeEnds(admin, [...new Set(inputs.flatMap((gi) => gi.topics))]);
    const plain = ends.filter((e) => !transactionalInputs.has(e.topic));
    const txn = ends.filter((e) => transactionalInputs.has(e.topic));
    const endOf = new Map(plain.map((e) => [`${e.topic}:${e.partition}`, e.highWatermark]));
    for (const [k, v] of await lastDataEnds(kafka, txn)) endOf.set(k, v);
    for (const gi of inputs) {
      const committed = committedOf.get(gi.group)!;
      for (const t of committed) {
        for (const p of t.partitions) {
          const end = endOf.get(`${t.topic}:${p.partition}`) ?? 0n;
          const c = BigInt(p.offset) < 0n ? 0n : BigInt(p.offset);
          if (c < end) out.push({ group: gi.group, topic: t.topic, partition: p.partition, committed: String(c), end: String(end) });
        }
      }
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}
