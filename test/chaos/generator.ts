/**
 * Writes a run's input: a seeded, reproducible stream of good records with bad ones (the corpus) mixed in at
 * `badRate`, spread evenly over `durationMs` so processing (and the chaos) happens while input still arrives.
 * The producer is idempotent with acks=all, so a broker failure does not duplicate input; the verifier reads the
 * input topic back anyway, so the model is always built from what the processors actually saw.
 */
import kafkajs, { Kafka, logLevel, type Message } from 'kafkajs';
import { createTopicsAndWait } from '../../src/kafka/admin.ts';
import { BAD_KINDS } from './corpus.ts';
import { Rng } from './rng.ts';
import type { DeclaredTopic, GenRecord, Workload } from './workloads/workload.ts';

const { Partitioners } = kafkajs;

export interface GeneratorOptions {
  brokers: string[];
  app: string;
  workload: Workload;
  seed: number;
  events: number;
  badRate: number;
  keys: number;
  maxRecordBytes: number;
  partitions: number;
  replicationFactor: number;
  /** spread the input over this long (0: as fast as possible) */
  durationMs: number;
  /**
   * write in bursts of this many records, as fast as the broker takes them, pausing between bursts to keep to
   * `durationMs`: a backlog makes the processors fetch large batches, so their transactions stay open for
   * commitIntervalMs (a trickle is processed in small batches that each commit at once)
   */
  burstRecords: number;
  /** stop early (the run is being torn down) */
  stopped?: () => boolean;
  log?: (line: string) => void;
}

export interface GeneratorResult {
  records: number;
  bad: number;
  badByKind: Record<string, number>;
}

/** Creates the input topics as the topology declares them (so the processors find them with the same config). */
export async function createInputTopics(brokers: string[], topics: DeclaredTopic[], partitions: number, replicationFactor: number): Promise<void> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.name));
    if (!missing.length) return;
    await createTopicsAndWait(
      admin,
      missing.map((t) => ({
        topic: t.name,
        numPartitions: partitions,
        replicationFactor,
        configEntries: Object.entries({ ...t.config, ...(replicationFactor >= 3 ? { 'min.insync.replicas': '2' } : {}) }).map(([name, value]) => ({ name, value })),
      })),
    );
  } finally {
    await admin.disconnect();
  }
}

export async function generate(o: GeneratorOptions): Promise<GeneratorResult> {
  const rng = new Rng(o.seed);
  const pickBad = rng.fork('bad');
  const source = o.workload.source(rng.fork('records'), { keys: o.keys, maxRecordBytes: o.maxRecordBytes });
  const topics = new Map(o.workload.inputTopics(o.app).map((t) => [t.alias, t.name]));
  const kafka = new Kafka({ brokers: o.brokers, clientId: `${o.app}-generator`, logLevel: logLevel.NOTHING, retry: { retries: 30, maxRetryTime: 5000 } });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: o.partitions }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
  const result: GeneratorResult = { records: 0, bad: 0, badByKind: {} };
  const chunk = 1000;
  const started = Date.now();
  let lastLog = started;
  try {
    while (result.records < o.events && !o.stopped?.()) {
      const batch = new Map<string, Message[]>();
      const n = Math.min(chunk, o.events - result.records, Math.max(1, o.burstRecords) - (result.records % Math.max(1, o.burstRecords)));
      for (let i = 0; i < n; i++) {
        let r: GenRecord;
        if (pickBad.chance(o.badRate)) {
          const kind = BAD_KINDS[result.bad % BAD_KINDS.length]!;
          r = source.bad(kind);
          result.bad++;
          result.badByKind[kind] = (result.badByKind[kind] ?? 0) + 1;
        } else {
          r = source.good();
        }
        const topic = topics.get(r.topic);
        if (!topic) throw new Error(`workload ${o.workload.name} wrote to undeclared input ${r.topic}`);
        const m: Message = { key: r.key, value: r.value };
        if (r.partition !== undefined) m.partition = r.partition % o.partitions;
        if (r.headers) m.headers = r.headers;
        const list = batch.get(topic) ?? [];
        list.push(m);
        batch.set(topic, list);
      }
      // One send per topic-partition (like foldstream's task producers): a kafkajs send spanning brokers can, when
      // one broker dies, re-send another broker's batch with advanced sequence numbers (OUT_OF_ORDER_SEQUENCE_NUMBER
      // here, duplicates in a transaction). Partitions are chosen as the default partitioner would.
      const byPartition = new Map<string, { topic: string; messages: Message[] }>();
      for (const [topic, messages] of batch) {
        for (const m of messages) {
          const partition = m.partition ?? partitioner({ topic, partitionMetadata, message: m });
          const k = `${topic}:${partition}`;
          const group = byPartition.get(k) ?? { topic, messages: [] };
          group.messages.push({ ...m, partition });
          byPartition.set(k, group);
        }
      }
      await Promise.all([...byPartition.values()].map(({ topic, messages }) => producer.send({ acks: -1, topic, messages })));
      result.records += n;
      const burstDone = result.records % Math.max(1, o.burstRecords) < n || result.records >= o.events;
      if (o.durationMs > 0 && burstDone) {
        const due = started + (result.records / o.events) * o.durationMs;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        o.log?.(`generator: ${result.records}/${o.events} records written (${result.bad} bad)`);
      }
    }
  } finally {
    await producer.disconnect();
  }
  return result;
}
