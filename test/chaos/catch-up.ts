/**
 * Waits until every processor consumed its input to the end: each group's committed offset reaches the offset after
 * the last record that a read_committed reader can see in each input partition. For inputs written without
 * transactions that is the high watermark; for inputs written by transactions (a projection over an aggregate's
 * events) the log may end in commit/abort markers or aborted records, so the tail is read to find the last data record.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { probeEnds, type PartitionEnds } from './verify/offsets-probe.ts';

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

/** Offset after the last record visible to read_committed, per partition; reads only each partition's tail. */
async function lastDataEnds(kafka: Kafka, admin: Admin, ends: PartitionEnds[]): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  const needRead = ends.filter((e) => e.lastStable > e.logStart);
  for (const e of ends) if (e.lastStable <= e.logStart) out.set(`${e.topic}:${e.partition}`, e.logStart);
  if (!needRead.length) return out;
  const TAIL = 20_000n;
  const groupId = `chaos-tail-${randomBytes(5).toString('hex')}`;
  const byTopic = new Map<string, PartitionEnds[]>();
  for (const e of needRead) byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), e]);
  for (const [topic, es] of byTopic) {
    const partitions = es.map((e) => ({ partition: e.partition, offset: String(e.lastStable - TAIL > e.logStart ? e.lastStable - TAIL : e.logStart) }));
    await admin.setOffsets({ groupId, topic, partitions });
  }
  const pending = new Set(needRead.map((e) => `${e.topic}:${e.partition}`));
  const target = new Map(needRead.map((e) => [`${e.topic}:${e.partition}`, e.lastStable]));
  const start = new Map(needRead.map((e) => [`${e.topic}:${e.partition}`, e.lastStable - TAIL > e.logStart ? e.lastStable - TAIL : e.logStart]));
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  consumer.on(consumer.events.END_BATCH_PROCESS, (ev) => {
    const k = `${ev.payload.topic}:${ev.payload.partition}`;
    if (pending.has(k) && BigInt(ev.payload.lastOffset) + 1n >= target.get(k)!) {
      pending.delete(k);
      if (!pending.size) finish();
    }
  });
  await consumer.connect();
  try {
    for (const topic of byTopic.keys()) await consumer.subscribe({ topic });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const k = `${batch.topic}:${batch.partition}`;
        for (const m of batch.messages) {
          const o = BigInt(m.offset);
          if (o < target.get(k)!) out.set(k, o + 1n);
        }
      },
    });
    await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error('reading input tails timed out')), 60_000))]);
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  for (const [k, s] of start) if (!out.has(k)) out.set(k, s);
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
    for (const [k, v] of await lastDataEnds(kafka, admin, txn)) endOf.set(k, v);
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
